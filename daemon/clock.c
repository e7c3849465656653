/* clock — see clock.h. */
#include "clock.h"

#include <time.h>

int64_t cd_clock_now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cd_clock_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cd_clock_now_mono_ms(void)
{
    return cd_clock_now_mono_ns() / 1000000;
}

static int64_t real_wall(const struct cd_clock *c)
{
    (void)c;
    return cd_clock_now_wall_ms();
}

static int64_t real_mono(const struct cd_clock *c)
{
    (void)c;
    return cd_clock_now_mono_ms();
}

static int64_t fake_wall(const struct cd_clock *c)
{
    return c->fake_wall_ms;
}

static int64_t fake_mono(const struct cd_clock *c)
{
    return c->fake_mono_ms;
}

void cd_clock_init_real(struct cd_clock *c)
{
    c->wall_ms = real_wall;
    c->mono_ms = real_mono;
    c->fake_wall_ms = 0;
    c->fake_mono_ms = 0;
}

void cd_clock_init_fake(struct cd_clock *c, int64_t wall_ms)
{
    c->wall_ms = fake_wall;
    c->mono_ms = fake_mono;
    c->fake_wall_ms = wall_ms;
    c->fake_mono_ms = 1000000;
}

void cd_clock_advance(struct cd_clock *c, int64_t ms)
{
    c->fake_wall_ms += ms;
    c->fake_mono_ms += ms;
}
