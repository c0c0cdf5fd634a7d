/*
 * sampler.c — the power sampling thread: one NVML + RAPL reading every 1/hz seconds on an absolute
 * schedule (no drift), appended to a mutex-protected growing array of samples.
 */
#include "prof/sampler.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prof/timer.h"

#define AB_SAMPLER_MAX_LABELS 256
#define AB_LABEL_LEN 64

struct ab_sampler {
    ab_energy_meter *m;
    double hz;
    pthread_t thread;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;                   /* under lock */
    ab_power_sample *s;         /* under lock */
    size_t n, cap;
    uint32_t label;             /* under lock */
    uint32_t n_labels;
    char variant[AB_SAMPLER_MAX_LABELS][AB_LABEL_LEN];
    char phase[AB_SAMPLER_MAX_LABELS][AB_LABEL_LEN];
    double last_cpu_uj, last_cpu_t;
    int have_cpu;
};

static void take(ab_sampler *s, ab_power_sample *p) {
    p->t_s = ab_now_s();
    ab_gpu_sample *g = &p->gpu;
    if (!(s->m->nvml && ab_nvml_sample(s->m->nvml, s->m->gpu_index, g) == AB_OK)) {
        g->power_instant_w = g->power_avg_w = g->sm_clock_mhz = g->mem_clock_mhz = NAN;
        g->util_gpu_pct = g->util_mem_pct = g->temp_c = g->mem_used_bytes = NAN;
        g->throttle_reasons = 0;
        g->throttle_valid = 0;
    }
    p->cpu_power_w = NAN;
    double uj;
    if (s->m->cpu_ok && ab_rapl_read_uj(s->m->rapl, &uj) == AB_OK) {
        if (s->have_cpu && p->t_s > s->last_cpu_t) p->cpu_power_w = (uj - s->last_cpu_uj) * 1e-6 / (p->t_s - s->last_cpu_t);
        s->last_cpu_uj = uj;
        s->last_cpu_t = p->t_s;
        s->have_cpu = 1;
    }
}

static void *sampler_main(void *arg) {
    ab_sampler *s = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long period_ns = (long)(1e9 / s->hz);
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_mutex_unlock(&s->lock);
        ab_power_sample p;
        take(s, &p);
        pthread_mutex_lock(&s->lock);
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 1024;
            ab_power_sample *ns = realloc(s->s, cap * sizeof *ns);
            if (!ns) break; /* out of memory: keep what we have, stop sampling */
            s->s = ns;
            s->cap = cap;
        }
        p.label = s->label;
        s->s[s->n++] = p;
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000L) next.tv_nsec -= 1000000000L, next.tv_sec++;
        /* pthread_cond_timedwait takes CLOCK_REALTIME by default; the condvar is set to MONOTONIC. */
        while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &next) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

ab_status ab_sampler_start(ab_sampler **out, ab_energy_meter *m, double hz) {
    *out = NULL;
    if (!(hz > 0 && hz <= 1000)) return ab_fail(AB_ERR_USAGE, "--power-hz must be in (0, 1000], got %g", hz);
    if (!m->nvml && !m->cpu_ok)
        return ab_fail(AB_ERR_UNSUPPORTED, "no power source to sample: GPU: %s; CPU: %s", m->gpu_reason, m->cpu_reason);
    ab_sampler *s = calloc(1, sizeof *s);
    if (!s) return ab_fail(AB_ERR_OOM, "sampler: out of memory");
    s->m = m;
    s->hz = hz;
    s->n_labels = 1; /* label 0 = unlabelled: "" "" */
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        ab_sampler_free(s);
        return ab_fail(AB_ERR_INTERNAL, "sampler: pthread_create failed");
    }
    s->running = 1;
    *out = s;
    return AB_OK;
}

void ab_sampler_set_label(ab_sampler *s, const char *variant, const char *phase) {
    pthread_mutex_lock(&s->lock);
    uint32_t found = 0;
    for (uint32_t i = 1; i < s->n_labels && !found; i++)
        if (!strncmp(s->variant[i], variant, AB_LABEL_LEN - 1) && !strncmp(s->phase[i], phase, AB_LABEL_LEN - 1)) found = i;
    if (!found && s->n_labels < AB_SAMPLER_MAX_LABELS) {
        found = s->n_labels++;
        snprintf(s->variant[found], AB_LABEL_LEN, "%s", variant);
        snprintf(s->phase[found], AB_LABEL_LEN, "%s", phase);
    }
    s->label = found;
    pthread_mutex_unlock(&s->lock);
}

void ab_sampler_stop(ab_sampler *s) {
    if (!s->running) return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = 0;
}

void ab_sampler_free(ab_sampler *s) {
    if (!s) return;
    ab_sampler_stop(s);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->s);
    free(s);
}

size_t ab_sampler_count(ab_sampler *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

double ab_sampler_hz(const ab_sampler *s) { return s->hz; }

size_t ab_sampler_copy(ab_sampler *s, size_t from, ab_power_sample *dst, size_t max) {
    pthread_mutex_lock(&s->lock);
    size_t k = from < s->n ? s->n - from : 0;
    if (k > max) k = max;
    if (k) memcpy(dst, s->s + from, k * sizeof *dst);
    pthread_mutex_unlock(&s->lock);
    return k;
}

void ab_sampler_label(ab_sampler *s, uint32_t label, const char **variant, const char **phase) {
    pthread_mutex_lock(&s->lock);
    int ok = label < s->n_labels;
    pthread_mutex_unlock(&s->lock);
    *variant = ok ? s->variant[label] : "";
    *phase = ok ? s->phase[label] : "";
}

/* The GPU power of a sample: instant, else the 1 s average. */
static double sample_power(const ab_power_sample *p) {
    return isnan(p->gpu.power_instant_w) ? p->gpu.power_avg_w : p->gpu.power_instant_w;
}

void ab_sampler_window(ab_sampler *s, double t0, double t1, ab_power_window *w) {
    memset(w, 0, sizeof *w);
    w->mean_power_w = w->max_power_w = w->mean_cpu_power_w = w->mean_sm_clock_mhz = w->max_temp_c = NAN;
    w->max_mem_used_bytes = NAN;
    double sum_p = 0, sum_c = 0, sum_clk = 0;
    size_t n_p = 0, n_c = 0, n_clk = 0;
    pthread_mutex_lock(&s->lock);
    /* samples are appended in time order: binary-search the window's first one, stop after its last, so the
     * per-step progress line costs O(log n + window) however long the run */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->s[mid].t_s < t0) lo = mid + 1;
        else hi = mid;
    }
    for (size_t i = lo; i < s->n && s->s[i].t_s <= t1; i++) {
        const ab_power_sample *p = &s->s[i];
        w->n++;
        double pw = sample_power(p);
        if (!isnan(pw)) {
            sum_p += pw, n_p++;
            w->max_power_w = isnan(w->max_power_w) ? pw : fmax(w->max_power_w, pw);
        }
        if (!isnan(p->cpu_power_w)) sum_c += p->cpu_power_w, n_c++;
        if (!isnan(p->gpu.sm_clock_mhz)) sum_clk += p->gpu.sm_clock_mhz, n_clk++;
        if (!isnan(p->gpu.temp_c)) w->max_temp_c = isnan(w->max_temp_c) ? p->gpu.temp_c : fmax(w->max_temp_c, p->gpu.temp_c);
        if (!isnan(p->gpu.mem_used_bytes))
            w->max_mem_used_bytes = isnan(w->max_mem_used_bytes) ? p->gpu.mem_used_bytes : fmax(w->max_mem_used_bytes, p->gpu.mem_used_bytes);
        if (p->gpu.throttle_valid) w->throttle_any |= p->gpu.throttle_reasons;
    }
    pthread_mutex_unlock(&s->lock);
    if (n_p) w->mean_power_w = sum_p / (double)n_p;
    if (n_c) w->mean_cpu_power_w = sum_c / (double)n_c;
    if (n_clk) w->mean_sm_clock_mhz = sum_clk / (double)n_clk;
}
