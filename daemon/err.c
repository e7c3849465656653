/* err — see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cd_err_init(struct cd_err *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

int cd_err_set(struct cd_err *err, int code, const char *fmt, ...)
{
    if (err == NULL || err->code != 0)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void cd_err_prefix(struct cd_err *err, const char *fmt, ...)
{
    if (err == NULL || err->code == 0)
        return;
    char prefix[CD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* Room for both halves; the result is cut back to the field's size. */
    char joined[2 * CD_ERR_MSG_MAX + 2];
    snprintf(joined, sizeof(joined), "%s: %s", prefix, cd_err_msg(err));
    memcpy(err->msg, joined, sizeof(err->msg) - 1);
    err->msg[sizeof(err->msg) - 1] = '\0';
}

const char *cd_err_msg(const struct cd_err *err)
{
    if (err == NULL || err->code == 0)
        return "no error";
    if (err->msg[0] != '\0')
        return err->msg;
    return strerror(-err->code);
}

void cd_err_copy(struct cd_err *dst, const struct cd_err *src)
{
    if (dst == NULL || src == NULL || src->code == 0)
        return;
    cd_err_set(dst, src->code, "%s", cd_err_msg(src));
}
