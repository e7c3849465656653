/*
 * clock — where the daemon gets the time, injectable so scheduler and retention tests run on a
 * fake clock instead of sleeping. Wall time (Unix ms) stamps snapshots; monotonic time (ms) drives
 * deadlines. Any thread (the fake clock is for single-threaded tests).
 */
#ifndef CD_CLOCK_H
#define CD_CLOCK_H

#include <stdint.h>

struct cd_clock {
    int64_t (*wall_ms)(const struct cd_clock *c);
    int64_t (*mono_ms)(const struct cd_clock *c);
    /* For the fake clock: the current readings, advanced by tests with cd_clock_advance(). */
    int64_t fake_wall_ms;
    int64_t fake_mono_ms;
};

/* The real clock: CLOCK_REALTIME and CLOCK_MONOTONIC. */
void cd_clock_init_real(struct cd_clock *c);
/* A fake clock starting at the given wall time (monotonic starts at 1,000,000 ms). */
void cd_clock_init_fake(struct cd_clock *c, int64_t wall_ms);
void cd_clock_advance(struct cd_clock *c, int64_t ms);

static inline int64_t cd_clock_wall_ms(const struct cd_clock *c)
{
    return c->wall_ms(c);
}

static inline int64_t cd_clock_mono_ms(const struct cd_clock *c)
{
    return c->mono_ms(c);
}

/* Direct readings of the real clocks, for code that never needs faking (timings, logs). */
int64_t cd_clock_now_wall_ms(void);
int64_t cd_clock_now_mono_ms(void);
int64_t cd_clock_now_mono_ns(void);

#endif
