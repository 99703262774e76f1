/*
 * log.h - one line per event, key=value, to stderr or syslog
 *
 * Lines look like
 *   2026-11-28T12:57:23.123456Z sluiced[812]: info: qid=0kq3x5v1b2c0a7 event=queued ...
 * Message lines put qid= first; session lines put session= first.
 * Values that need it are quoted with log_q(), which returns a pointer into
 * a small per-thread ring of buffers (valid until eight more log_q calls).
 *
 * Levels: log_debug/log_info for events; log_warn (appends error=strerror)
 * and log_warnx for trouble that is answered and survived; fatal/fatalx for
 * startup problems (exit 1). A broken invariant is a bug: use abort().
 * Thread-safe: each line is formatted into one buffer and written with one
 * write(2).
 * LOG_SINK_NONE (a test hook for the fuzz harnesses, which run thousands of
 * sessions a second) drops every line but fatal ones, which go to stderr.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#define LOG_PRINTF(a, b)	__attribute__((format(printf, a, b)))

enum log_sink { LOG_SINK_STDERR, LOG_SINK_SYSLOG, LOG_SINK_NONE };

int	log_init(enum log_sink, const char *facility, int debug);
int	log_debug_enabled(void);
const char *log_q(const char *value);

void	log_debug(const char *, ...) LOG_PRINTF(1, 2);
void	log_info(const char *, ...) LOG_PRINTF(1, 2);
void	log_warn(const char *, ...) LOG_PRINTF(1, 2);
void	log_warnx(const char *, ...) LOG_PRINTF(1, 2);
void	fatal(const char *, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void	fatalx(const char *, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
