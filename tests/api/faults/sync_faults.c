/*
 * sync_faults: an LD_PRELOAD shim that injects faults into fsync(2) and fdatasync(2) of
 * one file of a real process, armed and disarmed at run time through a trigger file.
 *
 * Built by tests/api/faults.rs:
 *     cc -shared -fPIC -O2 -o libsyncfaults.so sync_faults.c -ldl
 *
 * Environment (read once, copied into fixed buffers):
 *     SYNC_FAULT_SUFFIX      a call is a candidate only if the fd's path ends with this
 *     SYNC_FAULT_TRIGGER     ... and this file exists at the time of the call
 *     SYNC_FAULT_MODE        "eio":   fail with -1 / errno EIO, without syncing
 *                            "stall": sleep in 20 ms steps while the trigger exists,
 *                                     then sync for real and return its result
 *     SYNC_FAULT_COUNT_FILE  optional: one byte is appended per injected fault
 *
 * Without SYNC_FAULT_SUFFIX, SYNC_FAULT_TRIGGER or a known SYNC_FAULT_MODE the shim
 * passes every call straight through.
 *
 * The hot path allocates nothing and uses only async-signal-safe calls (readlink,
 * access, open, write, close, nanosleep); its state is written once, under
 * pthread_once, and only read afterwards, so any number of threads may sync at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096

enum fault_mode { MODE_OFF, MODE_EIO, MODE_STALL };

typedef int (*sync_fn)(int);

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static sync_fn real_fsync;
static sync_fn real_fdatasync;
static enum fault_mode mode = MODE_OFF;
static char suffix[PATH_CAP];
static size_t suffix_len;
static char trigger[PATH_CAP];
static char count_file[PATH_CAP];
static int counting;

/* Copies env var `name` into `buf`; 0 if it is unset, empty or too long. */
static int copy_env(const char *name, char *buf, size_t cap) {
    const char *value = getenv(name);
    if (value == NULL) {
        return 0;
    }
    size_t len = strlen(value);
    if (len == 0 || len >= cap) {
        return 0;
    }
    memcpy(buf, value, len + 1);
    return 1;
}

static sync_fn next_symbol(const char *name) {
    sync_fn fn;
    void *sym = dlsym(RTLD_NEXT, name);
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

static void init(void) {
    real_fsync = next_symbol("fsync");
    real_fdatasync = next_symbol("fdatasync");

    char mode_name[16];
    if (!copy_env("SYNC_FAULT_SUFFIX", suffix, sizeof suffix) ||
        !copy_env("SYNC_FAULT_TRIGGER", trigger, sizeof trigger) ||
        !copy_env("SYNC_FAULT_MODE", mode_name, sizeof mode_name)) {
        return;
    }
    suffix_len = strlen(suffix);
    counting = copy_env("SYNC_FAULT_COUNT_FILE", count_file, sizeof count_file);
    if (strcmp(mode_name, "eio") == 0) {
        mode = MODE_EIO;
    } else if (strcmp(mode_name, "stall") == 0) {
        mode = MODE_STALL;
    }
}

__attribute__((constructor)) static void sync_faults_init(void) {
    pthread_once(&init_once, init);
}

static int armed(void) {
    return access(trigger, F_OK) == 0;
}

/* Whether the path `fd` refers to ends with SYNC_FAULT_SUFFIX. */
static int fd_matches(int fd) {
    static const char prefix[] = "/proc/self/fd/";
    char link[sizeof prefix + 16];
    char digits[16];
    size_t ndigits = 0;
    unsigned int n = (unsigned int)fd;
    do {
        digits[ndigits++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    memcpy(link, prefix, sizeof prefix - 1);
    for (size_t i = 0; i < ndigits; i++) {
        link[sizeof prefix - 1 + i] = digits[ndigits - 1 - i];
    }
    link[sizeof prefix - 1 + ndigits] = '\0';

    char path[PATH_CAP];
    ssize_t len = readlink(link, path, sizeof path);
    if (len < 0 || (size_t)len >= sizeof path) {
        return 0; /* not a file, or a path too long to judge */
    }
    if ((size_t)len < suffix_len) {
        return 0;
    }
    return memcmp(path + len - suffix_len, suffix, suffix_len) == 0;
}

static void record_fault(void) {
    if (!counting) {
        return;
    }
    int fd = open(count_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return;
    }
    const char byte = 'f';
    ssize_t written;
    do {
        written = write(fd, &byte, 1);
    } while (written < 0 && errno == EINTR);
    close(fd);
}

/* Callers run pthread_once first, so `real` is already resolved. */
static int intercept(int fd, sync_fn real, long sysno) {
    int saved_errno = errno;
    if (mode != MODE_OFF && fd >= 0 && armed() && fd_matches(fd)) {
        record_fault();
        if (mode == MODE_EIO) {
            errno = EIO;
            return -1;
        }
        const struct timespec step = {0, 20 * 1000 * 1000};
        while (armed()) {
            nanosleep(&step, NULL);
        }
    }
    errno = saved_errno;
    if (real != NULL) {
        return real(fd);
    }
    return (int)syscall(sysno, fd);
}

__attribute__((visibility("default"))) int fsync(int fd) {
    pthread_once(&init_once, init);
    return intercept(fd, real_fsync, SYS_fsync);
}

__attribute__((visibility("default"))) int fdatasync(int fd) {
    pthread_once(&init_once, init);
    return intercept(fd, real_fdatasync, SYS_fdatasync);
}
