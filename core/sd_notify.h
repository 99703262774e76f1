/*
 * sd_notify.h - readiness notification for systemd (Type=notify)
 *
 * The protocol spoken directly, without libsystemd: one datagram of
 * "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET (a path, or
 * an abstract name written with a leading '@').
 * sd_notify_init() connects once, at start and before privileges are
 * dropped, and unsets the variable; sd_notify() then sends on that socket.
 * Both do nothing when sluiced was not started by systemd.
 * Threads: main thread only.
 */
#ifndef SLUICE_SD_NOTIFY_H
#define SLUICE_SD_NOTIFY_H

int	sd_notify_init(void);		/* -1: $NOTIFY_SOCKET is unusable */
void	sd_notify(const char *state);	/* e.g. "READY=1\nSTATUS=..." */
void	sd_notify_close(void);

#endif
