/*
 * log.h - one line per event, key=value, to stderr, a file or syslog
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
 * write(2); a log file is opened O_APPEND, so lines never interleave and
 * another writer (or a rotation by copy) cannot make them overlap.
 * log_reopen() (SIGUSR1) opens the file's path again and swaps it in with
 * dup2(), so a line is written either to the old file or to the new one.
 * LOG_SINK_NONE (a test hook for the fuzz harnesses, which run thousands of
 * sessions a second) drops every line but fatal ones, which go to stderr.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#define LOG_PRINTF(a, b)	__attribute__((format(printf, a, b)))

enum log_sink { LOG_SINK_STDERR, LOG_SINK_SYSLOG, LOG_SINK_FILE,
	LOG_SINK_NONE };

/* log_init - where lines go; arg: the syslog facility (SYSLOG) or the
   file's path (FILE); -1 (errno set for a file) and stderr stays */
int	log_init(enum log_sink, const char *arg, int debug);
/* log_reopen - the log file again by its path (after a rotation); 0 when
   there is no file; -1 (errno set) and the old file stays */
int	log_reopen(void);
int	log_debug_enabled(void);
const char *log_q(const char *value);

void	log_debug(const char *, ...) LOG_PRINTF(1, 2);
void	log_info(const char *, ...) LOG_PRINTF(1, 2);
void	log_warn(const char *, ...) LOG_PRINTF(1, 2);
void	log_warnx(const char *, ...) LOG_PRINTF(1, 2);
void	fatal(const char *, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void	fatalx(const char *, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
