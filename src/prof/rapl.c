/*
 * rapl.c — package energy counters of /sys/class/powercap (or a fake tree) with wrap-around.
 */
#include "prof/rapl.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AB_RAPL_MAX_ZONES 16

typedef struct {
    char energy_path[512];
    double max_range_uj;        /* the counter wraps to 0 after this */
    double last_uj;             /* last raw reading */
} rapl_zone;

struct ab_rapl {
    pthread_mutex_t lock;
    int n;
    rapl_zone zone[AB_RAPL_MAX_ZONES];
    double total_uj;            /* cumulative since open */
};

/* Reads one unsigned integer from a sysfs file; errno-style message into why on failure. */
static int read_u64(const char *path, double *out, char *why, size_t why_size) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        return 0;
    }
    unsigned long long v;
    errno = 0;
    int got = fscanf(f, "%llu", &v);
    int err = errno;
    fclose(f);
    if (got != 1) {
        snprintf(why, why_size, "%s: %s", path, err ? strerror(err) : "not an unsigned integer");
        return 0;
    }
    *out = (double)v;
    return 1;
}

/* "intel-rapl:N" exactly (a package), not "intel-rapl:N:M" (a sub-zone) nor "intel-rapl" (the type). */
static int is_package_zone(const char *name) {
    const char *p = "intel-rapl:";
    size_t lp = strlen(p);
    if (strncmp(name, p, lp) != 0 || !name[lp]) return 0;
    for (const char *c = name + lp; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    return 1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

ab_status ab_rapl_open(ab_rapl **out, const char *root) {
    *out = NULL;
    if (!root) root = getenv("AB_POWERCAP_ROOT");
    if (!root || !*root) root = "/sys/class/powercap";
    DIR *d = opendir(root);
    if (!d) return ab_fail(AB_ERR_UNSUPPORTED, "RAPL not readable: %s: %s", root, strerror(errno));
    char *names[AB_RAPL_MAX_ZONES];
    int n_names = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n_names < AB_RAPL_MAX_ZONES)
        if (is_package_zone(e->d_name)) names[n_names++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n_names, sizeof names[0], cmp_names);

    ab_rapl *r = calloc(1, sizeof *r);
    if (!r) {
        for (int i = 0; i < n_names; i++) free(names[i]);
        return ab_fail(AB_ERR_OOM, "RAPL: out of memory");
    }
    pthread_mutex_init(&r->lock, NULL);
    char why[600] = "";
    for (int i = 0; i < n_names; i++) {
        rapl_zone *z = &r->zone[r->n];
        char range_path[512];
        snprintf(z->energy_path, sizeof z->energy_path, "%s/%s/energy_uj", root, names[i]);
        snprintf(range_path, sizeof range_path, "%s/%s/max_energy_range_uj", root, names[i]);
        if (read_u64(z->energy_path, &z->last_uj, why, sizeof why) && read_u64(range_path, &z->max_range_uj, why, sizeof why)) {
            if (z->max_range_uj <= 0) snprintf(why, sizeof why, "%s: zero range", range_path);
            else r->n++;
        }
        free(names[i]);
    }
    if (r->n == 0) {
        ab_rapl_close(r);
        if (n_names == 0) return ab_fail(AB_ERR_UNSUPPORTED, "RAPL not readable: no intel-rapl:N package zone under %s", root);
        return ab_fail(AB_ERR_UNSUPPORTED, "RAPL not readable: %s", why);
    }
    *out = r;
    return AB_OK;
}

void ab_rapl_close(ab_rapl *r) {
    if (!r) return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int ab_rapl_zone_count(const ab_rapl *r) { return r ? r->n : 0; }

ab_status ab_rapl_read_uj(ab_rapl *r, double *total_uj) {
    ab_status st = AB_OK;
    char why[600];
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n; i++) {
        rapl_zone *z = &r->zone[i];
        double cur;
        if (!read_u64(z->energy_path, &cur, why, sizeof why)) {
            st = ab_fail(AB_ERR_IO, "RAPL: %s", why);
            continue;
        }
        /* The counter runs 0 .. max_range and restarts at 0: a smaller value means one wrap. */
        double delta = cur >= z->last_uj ? cur - z->last_uj : (z->max_range_uj - z->last_uj) + cur;
        r->total_uj += delta;
        z->last_uj = cur;
    }
    *total_uj = r->total_uj;
    pthread_mutex_unlock(&r->lock);
    return st;
}
