/*
 * test_sasl.c - unit tests for sasl.c (strict base64, PLAIN, LOGIN) and
 * auth_users.c (the users file: parsing, its errors, crypt checks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth_users.h"
#include "sasl.h"

static long
dec(const char *in, char *out, size_t outlen)
{
	return sasl_b64_decode(in, strlen(in), (unsigned char *)out, outlen);
}

static void
test_base64(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(dec("", out, sizeof(out)), 0);
	assert_int_equal(dec("Zg==", out, sizeof(out)), 1);
	assert_memory_equal(out, "f", 1);
	assert_int_equal(dec("Zm8=", out, sizeof(out)), 2);
	assert_int_equal(dec("Zm9v", out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(dec("Zm9vYg==", out, sizeof(out)), 4);
	/* malformed: length, alphabet, white space, misplaced padding */
	assert_int_equal(dec("Zm9", out, sizeof(out)), -1);
	assert_int_equal(dec("Zm9v\r\n", out, sizeof(out)), -1);
	assert_int_equal(dec("Zm 9", out, sizeof(out)), -1);
	assert_int_equal(dec("Z===", out, sizeof(out)), -1);
	assert_int_equal(dec("=Zm9", out, sizeof(out)), -1);
	assert_int_equal(dec("Zg==Zg==", out, sizeof(out)), -1);
	assert_int_equal(dec("Zm=v", out, sizeof(out)), -1);
	assert_int_equal(dec("Zh==", out, sizeof(out)), -1); /* not canonical */
	assert_int_equal(dec("Zm9*", out, sizeof(out)), -1);
	/* the output limit */
	assert_int_equal(dec("Zm9v", out, 2), -1);
	assert_int_equal(dec("Zm9v", out, 3), 3);
}

static void
test_mechs(void **state)
{
	(void)state;
	assert_int_equal(sasl_mech_parse("plain"), SASL_PLAIN);
	assert_int_equal(sasl_mech_parse("LOGIN"), SASL_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5"), SASL_NONE);
	assert_int_equal(sasl_mech_parse(""), SASL_NONE);
	assert_string_equal(sasl_mech_name(SASL_LOGIN), "LOGIN");
}

static void
test_plain(void **state)
{
	struct sasl_creds c;
	char big[4096], b64[6000];

	(void)state;
	/* "\0bob\0secret" and "bob\0bob\0secret" */
	assert_null(sasl_plain("AGJvYgBzZWNyZXQ=", 16, &c));
	assert_string_equal(c.user, "bob");
	assert_string_equal(c.pass, "secret");
	assert_null(sasl_plain("Ym9iAGJvYgBzZWNyZXQ=", 20, &c));
	assert_string_equal(c.user, "bob");
	/* "eve\0bob\0secret": acting as someone else */
	assert_string_equal(sasl_plain("ZXZlAGJvYgBzZWNyZXQ=", 20, &c),
	    SASL_ERR_AUTHZ);
	/* "bo\0bob\0x": a prefix is not the same identity */
	assert_string_equal(sasl_plain("Ym8AYm9iAHg=", 12, &c), SASL_ERR_AUTHZ);
	/* "nonul", "\0bob" (one NUL), "\0\0pw" (no user) */
	assert_string_equal(sasl_plain("bm9udWw=", 8, &c), SASL_ERR_FORMAT);
	assert_string_equal(sasl_plain("AGJvYg==", 8, &c), SASL_ERR_FORMAT);
	assert_string_equal(sasl_plain("AABwdw==", 8, &c), SASL_ERR_EMPTY);
	/* "\0bob\0pw\0x": a third NUL */
	assert_string_equal(sasl_plain("AGJvYgBwdwB4", 12, &c),
	    SASL_ERR_FORMAT);
	assert_string_equal(sasl_plain("!!!!", 4, &c), SASL_ERR_BASE64);
	assert_string_equal(sasl_plain("", 0, &c), SASL_ERR_FORMAT);
	/* an empty password is well-formed (the check will fail it) */
	assert_null(sasl_plain("AGJvYgA=", 8, &c));
	assert_string_equal(c.pass, "");
	/* over the limits */
	memset(big, 'p', sizeof(big));
	big[0] = '\0';
	memcpy(big + 1, "bob", 3);
	big[4] = '\0';
	{
		static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
		    "klmnopqrstuvwxyz0123456789+/";
		size_t n = 5 + SASL_PASS_MAX + 3, o = 0;	/* 3 | n */

		for (size_t i = 0; i + 2 < n; i += 3) {
			unsigned v = (unsigned char)big[i] << 16 |
			    (unsigned char)big[i + 1] << 8 |
			    (unsigned char)big[i + 2];
			b64[o++] = a[v >> 18];
			b64[o++] = a[(v >> 12) & 63];
			b64[o++] = a[(v >> 6) & 63];
			b64[o++] = a[v & 63];
		}
		b64[o] = '\0';
		assert_string_equal(sasl_plain(b64, o, &c), SASL_ERR_LONG);
	}
}

static void
test_login(void **state)
{
	char out[16];

	(void)state;
	assert_null(sasl_login_field("Ym9i", 4, out, sizeof(out)));
	assert_string_equal(out, "bob");
	assert_null(sasl_login_field("", 0, out, sizeof(out)));
	assert_string_equal(out, "");
	assert_string_equal(sasl_login_field("Ym9", 3, out, sizeof(out)),
	    SASL_ERR_BASE64);
	/* "b\0b" */
	assert_string_equal(sasl_login_field("YgBi", 4, out, sizeof(out)),
	    SASL_ERR_FORMAT);
	/* 18 bytes into a 16-byte buffer */
	assert_string_equal(sasl_login_field("YWFhYWFhYWFhYWFhYWFhYWFh", 24,
	    out, sizeof(out)), SASL_ERR_LONG);
	assert_string_equal(sasl_login_field("YWFh", 4, out, 3),
	    SASL_ERR_LONG);
}

static char *
users_file(const char *text)
{
	static char path[] = "/tmp/sluice-test-users-XXXXXX";
	int fd;

	strcpy(path, "/tmp/sluice-test-users-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
hash(const char *prefix, const char *pw, char *out, size_t len)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt,
	    sizeof(salt)));
	memset(&cd, 0, sizeof(cd));
	snprintf(out, len, "%s", crypt_r(pw, salt, &cd));
}

static void
test_users_verify(void **state)
{
	char y[256], s6[256], bf[256], text[1024], err[256];
	struct auth_users *t;
	char *path;

	(void)state;
	hash("$y$", "pw-y", y, sizeof(y));
	hash("$6$", "pw-6", s6, sizeof(s6));
	hash("$2b$", "pw-b", bf, sizeof(bf));
	snprintf(text, sizeof(text), "# users\n\nzed:%s\nann:%s\r\nbob:%s  \n",
	    y, s6, bf);
	path = users_file(text);
	t = auth_users_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(t);
	assert_int_equal(auth_users_count(t), 3);
	assert_int_equal(auth_users_verify(t, "zed", "pw-y"), AUTH_CHECK_OK);
	assert_int_equal(auth_users_verify(t, "ann", "pw-6"), AUTH_CHECK_OK);
	assert_int_equal(auth_users_verify(t, "bob", "pw-b"), AUTH_CHECK_OK);
	assert_int_equal(auth_users_verify(t, "bob", "pw-y"), AUTH_CHECK_BAD);
	assert_int_equal(auth_users_verify(t, "bob", ""), AUTH_CHECK_BAD);
	assert_int_equal(auth_users_verify(t, "Bob", "pw-b"),
	    AUTH_CHECK_UNKNOWN);
	assert_int_equal(auth_users_verify(t, "nobody", "x"),
	    AUTH_CHECK_UNKNOWN);
	auth_users_free(t);
	/* no table at all: nobody is known */
	assert_int_equal(auth_users_verify(NULL, "zed", "pw-y"),
	    AUTH_CHECK_UNKNOWN);
}

static void
load_fails(const char *text, const char *want)
{
	char err[512], *path = users_file(text);
	struct auth_users *t = auth_users_load(path, err, sizeof(err));

	unlink(path);
	assert_null(t);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
}

static void
test_users_errors(void **state)
{
	char err[256], longline[1200];
	static const char h[] = "$6$saltsalt$abcdefghijabcdefghij";

	(void)state;
	load_fails("alice\n", ":1: expected user:hash");
	load_fails(":$6$saltsalt$abcdefghijabcdefghij\n", ":1: expected");
	load_fails("#\nalice:$1$salt$abcdefghijabcdefghij\n",
	    ":2: not a yescrypt");
	load_fails("alice:abcdefghijklm\n", ":1: not a yescrypt");
	load_fails("alice:$6$\n", ":1: not a yescrypt");
	load_fails("a b:$6$saltsalt$abcdefghijabcdefghij\n", "bad user name");
	{
		char two[256];
		snprintf(two, sizeof(two), "a:%s\nb:%s\na:%s\n", h, h, h);
		load_fails(two, "user a is listed twice");
	}
	memset(longline, 'x', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	load_fails(longline, ":1: line too long");
	assert_null(auth_users_load("/nonexistent/users", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_mechs),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_users_verify),
		cmocka_unit_test(test_users_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
