/*
 * noop_milter.c - a libmilter filter that does nothing, for the milter
 * benchmark (tests/bench/milter.sh).
 *
 * It implements connect, helo, envfrom, envrcpt, header, eoh, body and eom
 * and answers SMFIS_CONTINUE to each, like a typical milter that looks at
 * every event: no negotiate callback, so libmilter requests no SMFIP_NR_*
 * bit and the MTA waits for an answer to every event; only DATA and
 * UNKNOWN (no callback) are negotiated away (SMFIP_NODATA, NOUNKNOWN). It
 * asks for no modification actions.
 *
 * Build: cc -O2 -o noop_milter noop_milter.c $(pkg-config --cflags --libs milter) -pthread
 * Run:   ./noop_milter unix:/path/noop.sock [umask-octal]   (or inet:PORT@127.0.0.1)
 *        The optional umask applies to the unix socket (Postfix's smtpd runs
 *        as user postfix and needs write permission on it: pass 0).
 *        SIGTERM stops it (libmilter notices within a few seconds); it then
 *        prints "noop_milter: connections N messages M" (M = eom callbacks)
 *        on stderr, which milter.sh checks: every message went through it.
 *
 * Threads: libmilter runs one thread per MTA connection; the callbacks keep
 * no state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <libmilter/mfapi.h>

static unsigned long n_connections, n_messages;   /* atomic adds */

static sfsistat noop_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)ctx; (void)host; (void)addr;
    __atomic_fetch_add(&n_connections, 1, __ATOMIC_RELAXED);
    return SMFIS_CONTINUE;
}

static sfsistat noop_helo(SMFICTX *ctx, char *helo)
{
    (void)ctx; (void)helo;
    return SMFIS_CONTINUE;
}

static sfsistat noop_envfrom(SMFICTX *ctx, char **argv)
{
    (void)ctx; (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat noop_envrcpt(SMFICTX *ctx, char **argv)
{
    (void)ctx; (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat noop_header(SMFICTX *ctx, char *name, char *value)
{
    (void)ctx; (void)name; (void)value;
    return SMFIS_CONTINUE;
}

static sfsistat noop_eoh(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat noop_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    (void)ctx; (void)chunk; (void)len;
    return SMFIS_CONTINUE;
}

static sfsistat noop_eom(SMFICTX *ctx)
{
    (void)ctx;
    __atomic_fetch_add(&n_messages, 1, __ATOMIC_RELAXED);
    return SMFIS_CONTINUE;
}

static struct smfiDesc noop_desc = {
    .xxfi_name = "noop",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = noop_connect,
    .xxfi_helo = noop_helo,
    .xxfi_envfrom = noop_envfrom,
    .xxfi_envrcpt = noop_envrcpt,
    .xxfi_header = noop_header,
    .xxfi_eoh = noop_eoh,
    .xxfi_body = noop_body,
    .xxfi_eom = noop_eom,
};

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s unix:/path|inet:PORT@127.0.0.1 [umask]\n",
                argv[0]);
        return 2;
    }
    if (argc == 3)
        umask((mode_t)strtol(argv[2], NULL, 8));
    if (smfi_setconn(argv[1]) != MI_SUCCESS) {
        fprintf(stderr, "noop_milter: smfi_setconn(%s) failed\n", argv[1]);
        return 1;
    }
    if (smfi_register(noop_desc) != MI_SUCCESS) {
        fprintf(stderr, "noop_milter: smfi_register failed\n");
        return 1;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {    /* 1: remove a stale socket */
        fprintf(stderr, "noop_milter: cannot open %s\n", argv[1]);
        return 1;
    }
    int rc = smfi_main();
    fprintf(stderr, "noop_milter: connections %lu messages %lu\n",
            __atomic_load_n(&n_connections, __ATOMIC_RELAXED),
            __atomic_load_n(&n_messages, __ATOMIC_RELAXED));
    return rc == MI_SUCCESS ? 0 : 1;
}
