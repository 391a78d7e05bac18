# glad - build, test, install. Sources are discovered by wildcard:
#   lib/**/*.c -> libglad.a ; bin/glad-*.c -> one program each (+ bin/cli.c)
#   tests/test_*.c -> one unit-test binary each ; tests/cli/*.sh -> CLI tests
# Usage: make [V=1] [BUILD=dir] ; make check ; make bench ; make install PREFIX=...

CC      ?= cc
CFLAGS  ?= -O3 -g
WARN    := -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter
PKGS    := msgpack libpng libtiff-4 libzstd libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmsgpackc -lpng16 -ltiff -lzstd -ljpeg)
ALL_CFLAGS  = $(WARN) -D_GNU_SOURCE -fopenmp -Ilib $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LDLIBS_ALL  = $(PKG_LIBS) -lopenblas -lm -fopenmp $(LDLIBS)

BUILD   ?= build
PREFIX  ?= /usr/local
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC  := $(sort $(wildcard lib/*.c lib/*/*.c lib/*/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
BIN_SRC  := $(sort $(wildcard bin/glad-*.c))
PROGS    := $(BIN_SRC:bin/%.c=$(BUILD)/%)
CLI_OBJ  := $(BUILD)/obj/bin/cli.o
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
MAN1     := $(sort $(wildcard man/*.1))
MAN5     := $(sort $(wildcard man/*.5))
MAN7     := $(sort $(wildcard man/*.7))
LIBA     := $(BUILD)/libglad.a

.PHONY: all check bench deps install uninstall clean tests asan-check
all: $(LIBA) $(PROGS) $(TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/glad-%: $(BUILD)/obj/bin/glad-%.o $(CLI_OBJ) $(LIBA)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIBA)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

tests: $(TESTS)

# Every test: unit binaries, CLI scripts, man-page examples. The last line
# of output is the total "N passed, N failed".
check: all
	$(Q)GLAD_BUILD=$(abspath $(BUILD)) sh tests/run.sh

# The same tests built with AddressSanitizer + UBSan in a separate tree.
asan-check:
	$(Q)$(MAKE) BUILD=$(BUILD)-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

bench: all $(BENCH_BIN)
	$(Q)GLAD_BUILD=$(abspath $(BUILD)) sh tests/bench/run.sh

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$(grep -v '^#' .ci/debian-packages)

# Extra packages only the benchmarks' Python references need (large).
bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision python3-sklearn python3-skimage

install: $(PROGS)
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man5 $(MANDIR)/man7
	install -m 755 $(PROGS) $(BINDIR)
	$(if $(MAN1),install -m 644 $(MAN1) $(MANDIR)/man1)
	$(if $(MAN5),install -m 644 $(MAN5) $(MANDIR)/man5)
	$(if $(MAN7),install -m 644 $(MAN7) $(MANDIR)/man7)
	install -d $(DESTDIR)$(PREFIX)/share/glad/mtd
	install -m 644 datasets/mtd/split.txt $(DESTDIR)$(PREFIX)/share/glad/mtd/split.txt

uninstall:
	rm -f $(addprefix $(BINDIR)/,$(notdir $(PROGS)))
	rm -rf $(DESTDIR)$(PREFIX)/share/glad
	rm -f $(addprefix $(MANDIR)/man1/,$(notdir $(MAN1))) $(addprefix $(MANDIR)/man5/,$(notdir $(MAN5))) $(addprefix $(MANDIR)/man7/,$(notdir $(MAN7)))

clean:
	rm -rf $(BUILD) $(BUILD)-asan

.SECONDARY:
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
