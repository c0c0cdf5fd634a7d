/*
 * rapl.h — CPU package energy from Linux powercap (Intel RAPL, also AMD's RAPL-compatible driver).
 *
 * Reads every top-level package zone <root>/intel-rapl:N/energy_uj (sub-zones such as core/uncore/dram
 * are not added: they are parts of, or beside, the package and would double-count or mix domains).
 * energy_uj is a counter that wraps at max_energy_range_uj; each read adds the forward difference modulo
 * the range, so the cumulative total is correct as long as it is read at least once per wrap period
 * (minutes to hours; the sampler thread reads it at --power-hz). Root defaults to /sys/class/powercap,
 * overridable with $AB_POWERCAP_ROOT (tests use a fake tree).
 */
#ifndef AB_PROF_RAPL_H
#define AB_PROF_RAPL_H

#include "core/status.h"

typedef struct ab_rapl ab_rapl;

/* AB_ERR_UNSUPPORTED with a reason (no powercap tree, no package zone, energy_uj unreadable — often
 * root-only since 2020) when no package can be read. */
ab_status ab_rapl_open(ab_rapl **out, const char *root);
void ab_rapl_close(ab_rapl *r);   /* NULL-safe */
int ab_rapl_zone_count(const ab_rapl *r);
/* Cumulative package energy in uJ since open, wrap-around resolved, summed over packages.
 * Thread-safe. AB_ERR_IO if a zone became unreadable (the total stays at its last good value). */
ab_status ab_rapl_read_uj(ab_rapl *r, double *total_uj);

#endif
