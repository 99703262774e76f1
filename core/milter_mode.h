/*
 * milter_mode.h - `sluiced --milter SOCKET`: the configured filter
 * pipeline (C plugins, Lua scripts) offered to Postfix or Sendmail as a
 * milter, built on libmilter (design.md section 3, "the other direction").
 *
 * milter_mode_run() takes over from main() once the configuration is
 * loaded and the global libraries are set up: it starts the worker loops
 * and the pipeline (no SMTP listeners, no queue manager), serves milter
 * connections until SIGTERM/SIGINT/SIGHUP, drains them and tears down.
 * Thread: the main thread.
 */
#ifndef SLUICE_MILTER_MODE_H
#define SLUICE_MILTER_MODE_H

/* milter_mode_run - SOCKET in libmilter syntax; the process exit code */
int	milter_mode_run(const char *socket);

#endif
