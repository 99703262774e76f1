/*
 * tls_server.c - OpenSSL server contexts per listener (tls_server.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "server.h"
#include "tls_server.h"
#include "util.h"

struct tls_server_set {
	size_t n;
	SSL_CTX **ctx;		/* by start-time listener index; NULL: no TLS */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_server_set *current;

/* ssl_error - OpenSSL's first queued error as text, then clear the queue */
static const char *
ssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static SSL_CTX *
context_new(const struct conf_listener *l, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "sluice";
	SSL_CTX *ctx;
	char why[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "listener %s: cannot create a TLS "
		    "context: %s", l->name, ssl_error(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, l->tls.cert) != 1) {
		snprintf(err, errlen, "listener %s: cannot use tls.cert %s: %s",
		    l->name, l->tls.cert, ssl_error(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, l->tls.key,
	    SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
		snprintf(err, errlen, "listener %s: cannot use tls.key %s: %s",
		    l->name, l->tls.key, ssl_error(why, sizeof(why)));
		goto fail;
	}
	if (ERR_peek_error() != 0 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "listener %s: tls.key %s does not match "
		    "tls.cert %s", l->name, l->tls.key, l->tls.cert);
		ERR_clear_error();
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* the listener of nc that has the start-time listener's name */
static const struct conf_listener *
same_listener(const struct config *nc, const struct conf_listener *old)
{
	for (size_t i = 0; i < nc->nlisteners; i++)
		if (strcmp(nc->listeners[i].name, old->name) == 0)
			return &nc->listeners[i];
	return NULL;
}

static void
set_free(struct tls_server_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		SSL_CTX_free(set->ctx[i]);
	free(set->ctx);
	free(set);
}

struct tls_server_set *
tls_server_prepare(const struct config *nc, char *err, size_t errlen)
{
	struct tls_server_set *set = xcalloc(1, sizeof(*set));

	set->n = server.nlisteners;
	set->ctx = xcalloc(set->n ? set->n : 1, sizeof(*set->ctx));
	for (size_t i = 0; i < set->n; i++) {
		const struct conf_listener *bound = server.listeners[i].conf;
		const struct conf_listener *l = same_listener(nc, bound);

		/* the mode is bound at start; the files may change */
		if (bound->tls.mode == TLS_MODE_NONE)
			continue;
		if (l == NULL || l->tls.mode == TLS_MODE_NONE)
			l = bound;
		if ((set->ctx[i] = context_new(l, err, errlen)) == NULL) {
			set_free(set);
			return NULL;
		}
	}
	return set;
}

void
tls_server_commit(struct tls_server_set *set)
{
	struct tls_server_set *old;

	pthread_mutex_lock(&mu);
	old = current;
	current = set;
	pthread_mutex_unlock(&mu);
	set_free(old);		/* live SSLs hold their own references */
}

void
tls_server_discard(struct tls_server_set *set)
{
	set_free(set);
}

int
tls_server_init(const struct config *c, char *err, size_t errlen)
{
	struct tls_server_set *set = tls_server_prepare(c, err, errlen);

	if (set == NULL)
		return -1;
	tls_server_commit(set);
	return 0;
}

int
tls_server_check(const struct config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		SSL_CTX *ctx;

		if (c->listeners[i].tls.mode == TLS_MODE_NONE)
			continue;
		if ((ctx = context_new(&c->listeners[i], err, errlen)) == NULL)
			return -1;
		SSL_CTX_free(ctx);
	}
	return 0;
}

SSL *
tls_server_ssl(size_t index)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&mu);
	if (current != NULL && index < current->n &&
	    current->ctx[index] != NULL)
		ssl = SSL_new(current->ctx[index]);
	pthread_mutex_unlock(&mu);
	return ssl;
}

void
tls_server_free(void)
{
	tls_server_commit(NULL);
}
