/*
 * pickup.h - the maildrop pickup thread of sluiced (pickup.c)
 *
 * pickup_prepare() creates SPOOL/maildrop (mode 1733: anyone may drop a
 * file, nobody but sluiced may list or remove others' files) and
 * maildrop/failed; it runs before privileges are dropped. pickup_start()
 * starts the thread once the workers run; pickup_stop() asks it to stop
 * after the message in hand, pickup_join() waits for it (after the
 * workers are gone, so that a session in flight cannot block it).
 * Threads: main thread only.
 */
#ifndef SLUICE_PICKUP_H
#define SLUICE_PICKUP_H

#include <stddef.h>

int	pickup_prepare(const char *spool, char *err, size_t errlen);
void	pickup_start(void);
void	pickup_stop(void);
void	pickup_join(void);

#endif
