/*
 * smtpc_tls.c - the TLS side of an outbound connection: which policy a
 * next hop gets (none, may, encrypt, verify; conf_tls_policy_find), the
 * client contexts, one SSL per STARTTLS (SNI, certificate checks), and
 * what a handshake achieved or why it failed (smtpc_int.h).
 *
 * Two contexts, both TLS 1.2 at least: one that checks nothing (may,
 * encrypt) and one that trusts delivery.tls_ca_file, or the system store
 * without it (verify). The verifying one follows the configuration: a
 * reload that names another CA file builds a new one at the next verify
 * connection (if that file cannot be loaded, verify connections fail
 * until it can). verify checks the chain and that the certificate names
 * the host connected to: the MX host name for MX delivery, the route's
 * host for "smtp:[host]", the address for an address literal (its IP
 * subjectAltName). SNI carries the host name, never an address.
 * LMTP next hops are opportunistic only (may, or none when delivery.tls
 * is none); delivery.tls_policy applies to SMTP next hops.
 * Threads: the queue manager's loop.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "metrics.h"
#include "dest.h"
#include "server.h"
#include "smtpc.h"
#include "smtpc_int.h"
#include "util.h"

static struct {
	SSL_CTX *plain;			/* no certificate checks */
	SSL_CTX *verify;		/* trusts ca_file, or the system */
	char *ca_file;			/* what verify was built from */
} T;

static SSL_CTX	*ctx_new(char *, size_t);
static int	 verify_ctx_current(char *, size_t);
static int	 is_address(const char *);

static const char *const policy_names[] = {
	[TLS_CLIENT_NONE] = "none", [TLS_CLIENT_MAY] = "may",
	[TLS_CLIENT_ENCRYPT] = "encrypt", [TLS_CLIENT_VERIFY] = "verify",
};

const char *
smtpc_tls_policy_name(enum tls_client_policy p)
{
	return policy_names[p];
}

static SSL_CTX *
ctx_new(char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create the TLS client context");
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

/* verify_ctx_current - T.verify for the configured CA file; -1 with why */
static int
verify_ctx_current(char *err, size_t errlen)
{
	const char *ca = server.conf->delivery.tls_ca_file;
	SSL_CTX *ctx;
	int ok;

	if (T.verify != NULL && (ca == NULL ? T.ca_file == NULL :
	    T.ca_file != NULL && strcmp(ca, T.ca_file) == 0))
		return 0;
	if ((ctx = ctx_new(err, errlen)) == NULL)
		return -1;
	ERR_clear_error();
	ok = ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		unsigned long e = ERR_get_error();
		snprintf(err, errlen, "cannot load the CA %s%s: %s",
		    ca != NULL ? "file " : "store", ca != NULL ? ca : "",
		    e ? ERR_reason_error_string(e) : "no certificates");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_free(T.verify);		/* connections keep their reference */
	free(T.ca_file);
	T.verify = ctx;
	T.ca_file = ca != NULL ? xstrdup(ca) : NULL;
	return 0;
}

int
smtpc_global_init(char *err, size_t errlen)
{
	if ((T.plain = ctx_new(err, errlen)) == NULL)
		return -1;
	return verify_ctx_current(err, errlen);
}

void
smtpc_global_free(void)
{
	SSL_CTX_free(T.plain);
	SSL_CTX_free(T.verify);
	free(T.ca_file);
	memset(&T, 0, sizeof(T));
}

enum tls_client_policy
smtpc_tls_policy(const struct route_spec *r)
{
	const struct config *cf = server.conf;

	if (r->kind != ROUTE_SMTP)
		return cf->delivery.tls == TLS_CLIENT_NONE ? TLS_CLIENT_NONE :
		    TLS_CLIENT_MAY;
	return conf_tls_policy_find(cf, r->host, r->literal);
}

static int
is_address(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

SSL *
smtpc_tls_new(struct smtpc *c, char *why, size_t len)
{
	const struct mx_addr *a = &c->addrs->a[c->ai];
	int verify = c->policy == TLS_CLIENT_VERIFY, addr = is_address(a->host);
	char err[256];
	SSL *ssl;

	if (verify && verify_ctx_current(err, sizeof(err)) == -1) {
		snprintf(why, len, "4.7.5 cannot verify %s: %s", c->peer, err);
		return NULL;
	}
	if ((ssl = SSL_new(verify ? T.verify : T.plain)) == NULL) {
		snprintf(why, len, "4.7.0 cannot start TLS: out of memory");
		return NULL;
	}
	if (!addr && a->sa.ss_family != AF_UNIX &&
	    SSL_set_tlsext_host_name(ssl, a->host) != 1)
		goto fail;
	if (verify) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (addr ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    a->host) != 1 : SSL_set1_host(ssl, a->host) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	snprintf(why, len, "4.7.5 cannot set up TLS for %s", c->peer);
	return NULL;
}

/* the certificate check's verdict, when it is what failed */
static const char *
verify_error(const struct smtpc *c, SSL *ssl)
{
	long r;

	if (c->policy != TLS_CLIENT_VERIFY || ssl == NULL)
		return NULL;
	if ((r = SSL_get_verify_result(ssl)) != X509_V_OK)
		return X509_verify_cert_error_string(r);
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return "no certificate";
	return NULL;
}

void
smtpc_tls_failed(struct smtpc *c, struct bufferevent *bev, char *why,
    size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	const char *ve = verify_error(c, bufferevent_openssl_get_ssl(bev));
	const char *what = e ? ERR_reason_error_string(e) : NULL;

	if (what == NULL)
		what = e ? "TLS error" : "connection closed";
	metrics_inc(M_TLS_HANDSHAKES, "outbound", "failed");
	while (bufferevent_get_openssl_error(bev) != 0)
		;
	if (ve != NULL)
		snprintf(why, len, "4.7.5 TLS certificate verification failed "
		    "for %s: %s", c->peer, ve);
	else if (c->policy >= TLS_CLIENT_ENCRYPT)
		snprintf(why, len, "4.7.5 TLS handshake failed with %s: %s",
		    c->peer, what);
	else
		snprintf(why, len, "4.4.2 TLS handshake failed (%s) with %s",
		    what, c->peer);
}

int
smtpc_tls_established(struct smtpc *c, struct bufferevent *bev, char *why,
    size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const char *ve = verify_error(c, ssl);

	if (ve != NULL) {
		metrics_inc(M_TLS_HANDSHAKES, "outbound", "failed");
		snprintf(why, len, "4.7.5 TLS certificate verification failed "
		    "for %s: %s", c->peer, ve);
		return -1;
	}
	metrics_inc(M_TLS_HANDSHAKES, "outbound", "ok");
	strlcpy_s(c->tls_version, SSL_get_version(ssl),
	    sizeof(c->tls_version));
	strlcpy_s(c->tls_cipher, SSL_get_cipher_name(ssl),
	    sizeof(c->tls_cipher));
	c->verified = c->policy == TLS_CLIENT_VERIFY;
	return 0;
}
