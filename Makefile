# nashra — a publishing daemon. This Makefile is the manifest: every source
# file, every library (through pkg-config), every warning, every test.
#
#   make            build ./nashra
#   make run        install missing Debian packages, build, run the example site
#   make test       install missing Debian packages, build, run every test
#   make test SANITIZE=1   the same under AddressSanitizer and UBSan
#   make test-slow  the fault-injection tests in full (every allocation failed)
#   make bench      benchmarks (tests/bench/), side by side with their peers
#   make soak       the soak and load run (tests/soak/), SOAK_SECONDS=600
#   make fuzz FUZZ_SECONDS=60   libFuzzer on every parser of outside input (tests/fuzz/)
#   make lint       clang-format check
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PYTHON  := /usr/bin/python3

# Debian packages the build and the tests need (SPEC §1).
DEB_BUILD := build-essential pkg-config libyaml-dev libxml2-dev libmd4c-dev \
             libjansson-dev libsqlite3-dev libssl-dev libmicrohttpd-dev libetpan-dev libcurl4-gnutls-dev \
             libcmocka-dev tzdata
DEB_TEST  := python3 python3-feedparser python3-aiosmtpd libxml2-utils trang locales sqlite3 \
             clang-format openssl valgrind r-cran-whisker python3-cryptography \
             python3-dkim
DEB_BENCH := hugo time postfix
DEB_SOAK  := wrk postfix
DEB_FUZZ  := clang libclang-rt-dev

PKGS := yaml-0.1 libxml-2.0 md4c jansson sqlite3 libcrypto libmicrohttpd libetpan libcurl

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Wformat=2 -Wno-unused-parameter
CFLAGS ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP
LDLIBS  =

ifeq ($(FUZZ),1)
# make fuzz: everything built by clang with libFuzzer's coverage, ASan and UBSan.
CC      := clang
override CFLAGS += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
BUILD   := build-fuzz
else ifeq ($(SANITIZE),1)
override CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
BUILD   := build-san
else
BUILD   := build
endif

ifneq ($(MAKECMDGOALS),deps)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc carries Debian's link specs (-specs=...no-pie...): not ours.
PKG_LIBS   := $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))
endif
override CFLAGS += $(PKG_CFLAGS)
override LDLIBS += $(PKG_LIBS) -lm -lpthread

# Infrastructure: each file stands alone (see ARCHITECTURE in README).
LIB_SRCS := \
	lib/buf.c \
	lib/csv.c \
	lib/diag.c \
	lib/fileio.c \
	lib/log.c \
	lib/mustache.c \
	lib/pkey.c \
	lib/ratelimit.c \
	lib/sdnotify.c \
	lib/text.c \
	lib/timefmt.c \
	lib/yaml_tree.c

CONFIG_SRCS := \
	config/config.c

POSTS_SRCS := \
	posts/post_md.c \
	posts/post_read.c \
	posts/post_scan.c

STORE_SRCS := \
	store/ap_store.c \
	store/mail_store.c \
	store/store.c

# Newsletters (SPEC §8): each helper module adds its files here.
MAIL_SRCS := \
	mail/bounces.c \
	mail/compose.c \
	mail/confirm.c \
	mail/dkim.c \
	mail/dsn.c \
	mail/html2text.c \
	mail/mime.c \
	mail/newsletter.c \
	mail/sender.c \
	mail/transport.c \
	mail/transport_maildir.c \
	mail/transport_smtp.c

# ActivityPub (SPEC §7): each helper module adds its files here.
AP_SRCS := \
	ap/docs.c \
	ap/fetch.c \
	ap/httpsig.c

FEEDS_SRCS := \
	feeds/feed_atom.c \
	feeds/feed_html.c \
	feeds/feed_json.c \
	feeds/feed_rss.c

DAEMON_SRCS := \
	daemon/ap_deliver.c \
	daemon/ap_http.c \
	daemon/ap_inbox.c \
	daemon/cmd_build.c \
	daemon/cmd_confirm.c \
	daemon/cmd_keys.c \
	daemon/cmd_mail.c \
	daemon/cmd_subscribers.c \
	daemon/http.c \
	daemon/http_metrics.c \
	daemon/http_path.c \
	daemon/http_static.c \
	daemon/loop.c \
	daemon/publish.c \
	daemon/serve.c \
	daemon/subs_http.c \
	daemon/watch.c

MAIN_SRC := daemon/main.c

CORE_SRCS := $(LIB_SRCS) $(CONFIG_SRCS) $(POSTS_SRCS) $(STORE_SRCS) $(FEEDS_SRCS) $(MAIL_SRCS) \
             $(AP_SRCS) $(DAEMON_SRCS)
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)

# Unit tests (cmocka): one file a module, each linked with the objects it needs.
UNIT_TESTS := buf text timefmt fileio yaml_tree config mustache post feeds store http mime html2text transport mail_store ap_docs httpsig ap_fetch dkim compose dsn ratelimit tokens \
              ap_store fault_fetch
test_buf_OBJS       := lib/buf.o
test_text_OBJS      := lib/text.o lib/buf.o
test_timefmt_OBJS   := lib/timefmt.o
test_fileio_OBJS    := lib/fileio.o lib/buf.o
test_yaml_tree_OBJS := lib/yaml_tree.o lib/diag.o
test_config_OBJS    := config/config.o lib/yaml_tree.o lib/diag.o lib/buf.o
test_mustache_OBJS  := lib/mustache.o lib/buf.o lib/diag.o
test_post_OBJS      := posts/post_read.o posts/post_md.o posts/post_scan.o config/config.o lib/yaml_tree.o \
                       lib/diag.o lib/buf.o lib/text.o lib/timefmt.o lib/fileio.o
test_feeds_OBJS     := $(FEEDS_SRCS:%.c=%.o) lib/mustache.o lib/buf.o lib/diag.o lib/text.o \
                       lib/timefmt.o lib/fileio.o
test_store_OBJS     := store/store.o posts/post_read.o posts/post_md.o config/config.o lib/yaml_tree.o \
                       lib/buf.o lib/diag.o lib/fileio.o lib/log.o lib/text.o lib/timefmt.o
test_http_OBJS      := daemon/http.o daemon/http_metrics.o daemon/http_path.o daemon/http_static.o \
                       lib/buf.o lib/diag.o lib/log.o lib/text.o
test_mime_OBJS      := mail/mime.o lib/buf.o lib/text.o lib/timefmt.o
test_html2text_OBJS := mail/html2text.o lib/buf.o lib/text.o
test_transport_OBJS := mail/transport.o mail/transport_maildir.o mail/transport_smtp.o daemon/loop.o \
                       lib/fileio.o lib/buf.o lib/log.o
test_mail_store_OBJS := store/mail_store.o store/store.o posts/post_read.o posts/post_md.o config/config.o \
                        lib/yaml_tree.o lib/buf.o lib/diag.o lib/fileio.o lib/log.o lib/text.o \
                        lib/timefmt.o
test_ap_docs_OBJS   := ap/docs.o lib/buf.o lib/text.o lib/timefmt.o
test_httpsig_OBJS   := ap/httpsig.o lib/pkey.o lib/buf.o lib/diag.o
test_ap_fetch_OBJS  := ap/fetch.o lib/buf.o lib/diag.o
test_fault_fetch_OBJS := ap/fetch.o lib/buf.o lib/diag.o
test_dkim_OBJS      := mail/dkim.o lib/pkey.o mail/mime.o lib/buf.o lib/diag.o lib/text.o lib/timefmt.o
test_compose_OBJS   := mail/compose.o mail/newsletter.o mail/html2text.o mail/mime.o mail/dkim.o \
                       lib/pkey.o lib/mustache.o posts/post_read.o posts/post_md.o config/config.o \
                       lib/yaml_tree.o lib/buf.o lib/diag.o lib/fileio.o lib/text.o lib/timefmt.o
test_dsn_OBJS       := mail/dsn.o
test_ratelimit_OBJS := lib/ratelimit.o
test_tokens_OBJS    := mail/newsletter.o config/config.o lib/yaml_tree.o lib/mustache.o lib/buf.o lib/diag.o lib/fileio.o lib/text.o \
                       lib/timefmt.o
test_ap_store_OBJS  := store/ap_store.o store/store.o posts/post_read.o posts/post_md.o config/config.o \
                       lib/yaml_tree.o lib/buf.o lib/diag.o lib/fileio.o lib/log.o lib/text.o \
                       lib/timefmt.o
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/unit/test_%)
FAILMALLOC := $(BUILD)/tests/fault/failmalloc.so

# Fuzz targets (tests/fuzz/fuzz_NAME.c), each linked with what it needs from
# the core's archive: for libFuzzer (make fuzz) and, with replay_main.c, as a
# replay of the seeds and the regression inputs (make test).
FUZZ_TARGETS := post config mustache csv httpsig ap mime html2text yaml http_path timefmt \
                dsn inbox form
FUZZ_SECONDS ?= 60

.PHONY: nashra all deps deps-test run test test-slow unit integration valgrind bench soak lint format \
        install clean check deps-fuzz fuzz fuzz-build fuzz-replay

all: nashra

nashra: $(BUILD)/nashra
	cp $< $@

$(BUILD)/nashra: $(CORE_OBJS) $(BUILD)/$(MAIN_SRC:.c=.o)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o $$(addprefix $(BUILD)/,$$(test_%_OBJS))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/libnashra.a: $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libnashra.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/libnashra.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- setup: install what is missing (as root, or through sudo) ---------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEB_BUILD))

deps-test: deps
	$(call apt_install,$(DEB_TEST))
	@for l in ar_SA.UTF-8 fr_FR.UTF-8; do \
	  locale -a 2>/dev/null | grep -qi "^$$(echo $$l | sed 's/UTF-8/utf8/')$$" || \
	  $(SUDO) localedef -i $${l%%.*} -c -f UTF-8 $$l 2>/dev/null || true; \
	done

deps-fuzz: deps
	$(call apt_install,$(DEB_FUZZ))

# --- run and test ------------------------------------------------------------
run: deps
	$(MAKE) nashra
	@echo "nashra serve: the example site at http://127.0.0.1:8080/ (edit contrib/example/content/; Ctrl-C stops)"
	./nashra serve -c contrib/example/nashra.yaml

test: deps-test
	$(MAKE) unit fuzz-replay integration
ifneq ($(SANITIZE),1)
	$(MAKE) valgrind
endif

# The daemon under valgrind's memcheck: changes, HTTP, reloads, a clean stop;
# any memory error or leak fails (not with SANITIZE: ASan and valgrind clash).
valgrind:
	sh tests/integration/valgrind_serve.sh

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

# Every fuzz target once on each of its seeds and regression inputs.
fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  $(BUILD)/fuzz/replay_$$t $$(find tests/fuzz/seeds/$$t tests/fuzz/regress/$$t -type f 2>/dev/null | sort) || fail=1; \
	done; exit $$fail

# make fuzz FUZZ_SECONDS=N: each target N seconds, one after the other.
fuzz: deps-fuzz
	$(MAKE) FUZZ=1 fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

integration: $(BUILD)/nashra $(FAILMALLOC)
	NASHRA=$(CURDIR)/$(BUILD)/nashra $(PYTHON) tests/integration/run.py

# Fault injection in full (tests/integration/test_faults.py with every
# allocation of a build failed in turn, not a sample): about half an hour.
test-slow: deps-test
	$(MAKE) $(BUILD)/nashra $(FAILMALLOC)
	NASHRA_SLOW=1 NASHRA=$(CURDIR)/$(BUILD)/nashra $(PYTHON) tests/integration/run.py test_faults

# The allocation-failure shim (LD_PRELOAD) of test_faults: not instrumented,
# even with SANITIZE (it sits in front of ASan's malloc).
$(FAILMALLOC): tests/fault/failmalloc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -fPIC -shared -o $@ $< -ldl

bench: deps
	@# postfix for smtp-sink and smtp-source only: no mail server is set up
	@echo 'postfix postfix/main_mailer_type select No configuration' | $(SUDO) debconf-set-selections
	$(call apt_install,$(DEB_BENCH))
	$(MAKE) nashra
	$(PYTHON) tests/bench/run.py
	$(PYTHON) tests/bench/serve.py
	$(PYTHON) tests/bench/mail.py
	$(PYTHON) tests/bench/ap.py

# The soak and load run of RELIABILITY.md: SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
soak: deps
	@echo 'postfix postfix/main_mailer_type select No configuration' | $(SUDO) debconf-set-selections
	$(call apt_install,$(DEB_SOAK))
	$(MAKE) nashra
	$(PYTHON) tests/soak/soak.py --seconds $(SOAK_SECONDS)

lint:
	clang-format --dry-run --Werror $(CORE_SRCS) $(MAIN_SRC) \
	    $(wildcard */*.h tests/unit/*.c tests/fuzz/*.[ch] tests/fault/*.c)

format:
	clang-format -i $(CORE_SRCS) $(MAIN_SRC) $(wildcard */*.h tests/unit/*.c tests/fuzz/*.[ch] tests/fault/*.c)

check: test lint

install: nashra
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	           $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/doc/nashra
	install -m 0755 nashra $(DESTDIR)$(PREFIX)/bin/nashra
	install -m 0644 contrib/man/nashra.1 $(DESTDIR)$(PREFIX)/share/man/man1/nashra.1
	install -m 0644 contrib/man/nashra.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/nashra.yaml.5
	install -m 0644 config/nashra.example.yaml $(DESTDIR)$(PREFIX)/share/doc/nashra/

clean:
	rm -rf build build-san build-fuzz nashra

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
