/* hash — see hash.h. */
#include "hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

int cd_hash_sha256(const void *data, size_t len, uint8_t out[CD_HASH_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != CD_HASH_SHA256_LEN)
        return -EIO;
    return 0;
}

void cd_hash_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

uint64_t cd_hash_fnv1a64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t cd_hash_fnv1a64_str(const char *s)
{
    return cd_hash_fnv1a64(s, strlen(s));
}
