# Makefile - build, run and test sluice.
#
#   make            build build/sluiced
#   make run        install build dependencies, build, run on conf/sluice.yaml
#   make test       install test dependencies, build, run unit + system tests
#   make install    PREFIX=/usr/local DESTDIR= SENDMAIL_LINK=1: binaries,
#                   plugins, Lua filters, configuration, man pages, unit
#   make asan       the same tests against an ASan+UBSan build (build/asan)
#   make bench      accept, relay and milter benchmarks against Postfix (tests/bench/)
#   make fuzz       libFuzzer harnesses (tests/fuzz/, clang + ASan + UBSan):
#                   the regression inputs once, then each harness for
#                   FUZZ_SECONDS (default 30) on a scratch copy of its corpus
#
# Everything is built under $(BUILD); `make BUILD=dir SAN=address,undefined`
# is what `make asan` does.

BUILD	?= build
CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wno-unused-parameter \
	   -Wno-format-truncation
PKGS	 = libevent libevent_pthreads libevent_openssl openssl yaml-0.1 \
	   lua5.4 libcares gmime-3.0 libarchive milter hiredis
PY	 = /usr/bin/python3
# System tests run in this many pytest-xdist workers: most of their time is
# spent waiting for retry timers, not on the CPU. TEST_JOBS=1 runs serially.
TEST_JOBS ?= 4

# Debian packages: to build, to test, and what the benchmark needs.
DEPS_BUILD = build-essential pkg-config libevent-dev libyaml-dev \
	     liblua5.4-dev libc-ares-dev libgmime-3.0-dev libmagic-dev \
	     libarchive-dev libssl-dev libmilter-dev libcrypt-dev \
	     libhiredis-dev
DEPS_TEST  = $(DEPS_BUILD) libcmocka-dev python3-pytest python3-pytest-xdist \
	     python3-aiosmtpd swaks \
	     dnsmasq-base openssl postfix dovecot-core dovecot-lmtpd dovecot-imapd \
	     python3-milter miltertest opendkim opendkim-tools python3-dkim \
	     redis-server redis-tools
# clang and its runtimes (libFuzzer, ASan, UBSan) for `make fuzz`
DEPS_FUZZ  = $(DEPS_BUILD) clang libclang-rt-14-dev

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Paths compiled in: the checkout's for the build used by `make run` and
# the tests; `make install` compiles the files using them again with the
# installed ones (INST_PATHS below).
PATH_DEFS = -DSLUICE_PLUGIN_DIR='"$(abspath $(BUILD)/plugins)"'
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -Icore -Icore/ctl \
	     -Icore/sendmail -Iconf -Iplugins -Ilua $(PATH_DEFS) \
	     $(PKG_CFLAGS) $(CFLAGS)
LDLIBS	  += $(PKG_LIBS) -lmagic -lcrypt -ldl -lpthread

ifdef SAN
ALL_CFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all \
	      -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=$(SAN)
endif

LIB_SRC	 = $(filter-out core/main.c,$(wildcard core/*.c)) $(wildcard conf/*.c) \
	   $(wildcard lua/*.c)
LIB_OBJ	 = $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ = $(BUILD)/core/main.o
PLUGIN_SRC = $(wildcard plugins/*.c)
PLUGINS  = $(PLUGIN_SRC:plugins/%.c=$(BUILD)/plugins/%.so)
TPLUG_SRC = $(wildcard tests/plugins/*.c)
TPLUGINS = $(TPLUG_SRC:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

CTL_SRC	 = $(wildcard core/ctl/*.c)
CTL_OBJ	 = $(CTL_SRC:%.c=$(BUILD)/%.o)
# sluice-sendmail: SM_OBJ is what the unit tests link too
SM_SRC	 = $(filter-out core/sendmail/sendmail.c,$(wildcard core/sendmail/*.c))
SM_OBJ	 = $(SM_SRC:%.c=$(BUILD)/%.o)
SM_MAIN	 = $(BUILD)/core/sendmail/sendmail.o

all: $(BUILD)/sluiced $(BUILD)/sluicectl $(BUILD)/sluice-sendmail $(PLUGINS)

$(BUILD)/sluiced: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sluicectl: $(CTL_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sluice-sendmail: $(SM_MAIN) $(SM_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_sendmail: $(SM_OBJ)
$(BUILD)/tests/test_top: $(BUILD)/core/ctl/expo.o $(BUILD)/core/ctl/top_view.o

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/plugins/%.so: plugins/%.c plugins/sluice_plugin.h
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $<"
	@$(CC) $(ALL_CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $<

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c plugins/sluice_plugin.h
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $<"
	@$(CC) $(ALL_CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) \
	    -o $@ $(filter %.c %.o,$^) $(LDLIBS) $(shell pkg-config --libs cmocka)

# install: PREFIX (default /usr/local) and DESTDIR as usual. Configuration
# in SYSCONFDIR/sluice (/etc when PREFIX is /usr, else PREFIX/etc), never
# overwritten; the binaries are linked again with the installed paths
# compiled in (build/inst/). SENDMAIL_LINK=1 adds sbin/sendmail ->
# sluice-sendmail.
PREFIX	   ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SPOOLDIR   ?= /var/spool/sluice
MAILDIR	   ?= /var/mail
SBINDIR	    = $(PREFIX)/sbin
PLUGINDIR   = $(PREFIX)/lib/sluice/plugins
DATADIR	    = $(PREFIX)/share/sluice
MANDIR	    = $(PREFIX)/share/man
UNITDIR	   ?= $(PREFIX)/lib/systemd/system
INST	    = $(BUILD)/inst
INST_PATHS  = -DSLUICE_PLUGIN_DIR='"$(PLUGINDIR)"' \
	      -DSLUICE_CONF_PATH='"$(SYSCONFDIR)/sluice/sluice.yaml"'
INST_SWAP   = core/filter_build.c core/filter_plugin.c
INST_LIB    = $(filter-out $(INST_SWAP:%.c=$(BUILD)/%.o),$(LIB_OBJ)) \
	      $(INST_SWAP:%.c=$(INST)/%.o)
INST_BINS   = $(INST)/sluiced $(INST)/sluicectl $(INST)/sluice-sendmail
SED_PATHS   = -e 's|@SBINDIR@|$(SBINDIR)|g' \
	      -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	      -e 's|@SPOOLDIR@|$(SPOOLDIR)|g' -e 's|@MAILDIR@|$(MAILDIR)|g' \
	      -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@PLUGINDIR@|$(PLUGINDIR)|g'

$(INST)/%.o: PATH_DEFS = $(INST_PATHS)
$(INST)/%.o: %.c $(INST)/paths
	@mkdir -p $(dir $@)
	@echo "  CC      $< (installed paths)"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# the paths the objects above were compiled with: rebuilt when they change
$(INST)/paths: FORCE
	@mkdir -p $(dir $@)
	@echo "$(PLUGINDIR) $(SYSCONFDIR)" | cmp -s - $@ || \
	    echo "$(PLUGINDIR) $(SYSCONFDIR)" > $@

$(INST)/sluiced: $(INST)/core/main.o $(INST_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(INST)/sluicectl: $(filter-out $(BUILD)/core/ctl/sluicectl.o,$(CTL_OBJ)) \
	    $(INST)/core/ctl/sluicectl.o $(INST_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(INST)/sluice-sendmail: $(INST)/core/sendmail/sendmail.o $(SM_OBJ) $(INST_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the default configuration with installed paths: spool, Maildirs, Lua
# filters, port 25 on every address, user sluice
$(INST)/sluice.yaml: conf/sluice.yaml $(INST)/paths
	sed -e 's|^spool: var/spool|spool: $(SPOOLDIR)|' \
	    -e 's|"var/mail/|"$(MAILDIR)/|' \
	    -e 's|lua/filters/|$(DATADIR)/lua/filters/|g' \
	    -e 's|^# user: sluice|user: sluice|' \
	    -e 's|{name: mx, address: 127.0.0.1, port: 2525, role: mx}|{name: mx, address: 0.0.0.0, port: 25, role: mx}|' \
	    -e '1s|.*|# sluice.yaml - the installed configuration, see sluice.yaml(5).|' \
	    $< > $@

install: $(INST_BINS) $(PLUGINS) $(INST)/sluice.yaml
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PLUGINDIR) \
	    $(DESTDIR)$(DATADIR)/lua/filters $(DESTDIR)$(SYSCONFDIR)/sluice \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/include/sluice
	install -m 755 $(INST_BINS) $(DESTDIR)$(SBINDIR)/
	install -m 755 $(PLUGINS) $(DESTDIR)$(PLUGINDIR)/
	install -m 644 plugins/sluice_plugin.h $(DESTDIR)$(PREFIX)/include/sluice/
	install -m 644 lua/filters/*.lua $(DESTDIR)$(DATADIR)/lua/filters/
	install -m 644 lua/README.md $(DESTDIR)$(DATADIR)/lua/
	install -m 644 plugins/README.md $(DESTDIR)$(DATADIR)/plugins.md
	for m in sluice.yaml.5 sluiced.8 sluicectl.8 sluice-sendmail.8; do \
		sed $(SED_PATHS) man/$$m > $(INST)/$$m && \
		install -m 644 $(INST)/$$m \
		    $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done
	sed $(SED_PATHS) conf/sluice.service > $(INST)/sluice.service
	install -m 644 $(INST)/sluice.service $(DESTDIR)$(UNITDIR)/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml ]; then \
		install -m 644 $(INST)/sluice.yaml \
		    $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml.default; \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml;" \
		    "the new default is sluice.yaml.default"; \
	else \
		install -m 644 $(INST)/sluice.yaml $(DESTDIR)$(SYSCONFDIR)/sluice/; \
	fi
ifneq ($(SENDMAIL_LINK),)
	ln -sf sluice-sendmail $(DESTDIR)$(SBINDIR)/sendmail
endif

# deps-* install missing Debian packages (as root, or through sudo), with
# a policy-rc.d that keeps their daemons (postfix, dovecot, opendkim,
# redis-server) from starting: tests run their own instances.
define install_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		prc=/usr/sbin/policy-rc.d; made=; \
		if [ ! -e $$prc ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$prc >/dev/null && \
			$$SUDO chmod 755 $$prc && made=1; \
		fi; \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
		rc=$$?; [ -z "$$made" ] || $$SUDO rm -f $$prc; exit $$rc; \
	fi
endef

deps-build:
	$(call install_missing,$(DEPS_BUILD))

# deps-test: like install_missing, but no package may start its system daemon
# (Postfix would take port 25, Dovecot 143/993, Redis 6379; the tests run
# private ones on free ports): a temporary /usr/sbin/policy-rc.d that exits 101 (any existing
# one is put back afterwards), Postfix preseeded to "No configuration".
deps-test:
	@missing=$$(for p in $(DEPS_TEST); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing (system daemons not started): $$missing"; \
		SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
		prc=/usr/sbin/policy-rc.d; bak=; \
		if [ -e $$prc ]; then \
			bak=$$($$SUDO mktemp $$prc.sluice-backup.XXXXXX) && \
			$$SUDO cp -p $$prc "$$bak" || exit 1; \
		fi; \
		restore() { if [ -n "$$bak" ]; then $$SUDO mv -f "$$bak" $$prc; \
			    else $$SUDO rm -f $$prc; fi; }; \
		trap restore EXIT; trap 'exit 1' HUP INT TERM; \
		printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$prc >/dev/null && \
		$$SUDO chmod 755 $$prc && \
		echo "postfix postfix/main_mailer_type select No configuration" | \
			$$SUDO debconf-set-selections && \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

run: deps-build
	$(MAKE) all
	$(BUILD)/sluiced -c conf/sluice.yaml

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: $(BUILD)/sluiced $(BUILD)/sluicectl $(BUILD)/sluice-sendmail \
	    $(PLUGINS) $(TPLUGINS)
	SLUICED=$(abspath $(BUILD)/sluiced) \
	SLUICE_SENDMAIL=$(abspath $(BUILD)/sluice-sendmail) \
	SLUICE_PLUGINS=$(abspath $(BUILD)/plugins) \
	SLUICE_TEST_PLUGINS=$(abspath $(BUILD)/tests/plugins) \
	    $(PY) -m pytest -q -n $(TEST_JOBS) tests/system

test: deps-test
	$(MAKE) all unit
	$(MAKE) system

asan: deps-test
	$(MAKE) BUILD=build/asan SAN=address,undefined CFLAGS="-O1 -g" all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) BUILD=build/asan SAN=address,undefined CFLAGS="-O1 -g" system

# fuzz: build/fuzz holds the core compiled again by clang with ASan, UBSan
# and coverage instrumentation, one binary per tests/fuzz/fuzz_NAME.c, the
# scratch corpora, crash artifacts and logs (tests/fuzz/run.sh).
FUZZ_SECONDS ?= 30
FUZZ_BUILD   = build/fuzz
FUZZ_NAMES   = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_MAKE    = $(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SAN=address,undefined \
	       CFLAGS="-O1 -g -fsanitize=fuzzer-no-link -Wno-unknown-warning-option"

$(BUILD)/libsluice.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# only meaningful with the FUZZ_MAKE settings
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libsluice.a
	@echo "  FUZZER  $<"
	@$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libsluice.a $(LDLIBS)

fuzz-bins:
	$(FUZZ_MAKE) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

deps-fuzz:
	$(call install_missing,$(DEPS_FUZZ))

fuzz: deps-fuzz
	$(MAKE) fuzz-bins
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_NAMES)

# fuzz-regress: only the saved crash inputs and the seed corpora, once each
fuzz-regress: deps-fuzz
	$(MAKE) fuzz-bins
	FUZZ_SECONDS=0 bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_NAMES)

bench: all
	bash tests/bench/accept.sh
	bash tests/bench/relay.sh
	bash tests/bench/milter.sh

clean:
	rm -rf build

FORCE:

.PHONY: all run unit system test asan bench clean deps-build deps-test \
	fuzz fuzz-bins fuzz-regress deps-fuzz install FORCE
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
