/*
 * sample.c — the built-in sample, prepared on demand into a cache directory (contract in sample.h).
 */
#include "data/sample.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/fsutil.h"
#include "data/embedded.h"
#include "data/hash.h"
#include "data/prepare.h"

static ab_status cache_root(char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (xdg && *xdg) w = snprintf(out, n, "%s/attnbench", xdg);
    else if (home && *home) w = snprintf(out, n, "%s/.cache/attnbench", home);
    else w = snprintf(out, n, "/tmp/attnbench-cache");
    if (w < 0 || (size_t)w >= n) return ab_fail(AB_ERR_USAGE, "sample: cache directory path too long");
    return AB_OK;
}

ab_status ab_sample_corpus_dir(char *out_dir, size_t n) {
    ab_blob sample = ab_embedded_sample_jsonl();
    if (sample.size == 0) return ab_fail(AB_ERR_INTERNAL, "sample: this binary was built without the sample corpus");
    char root[4096], dir[4200], jsonl[4300];
    AB_TRY(cache_root(root, sizeof root));
    snprintf(dir, sizeof dir, "%s/sample-%016" PRIx64, root, ab_hash64(sample.data, sample.size, 0));
    if ((size_t)snprintf(out_dir, n, "%s", dir) >= n) return ab_fail(AB_ERR_USAGE, "sample: output buffer too small");
    AB_TRY(ab_mkdir_p(dir));
    snprintf(jsonl, sizeof jsonl, "%s/tulu_sample.jsonl", dir);
    if (!ab_file_exists(jsonl)) AB_TRY(ab_write_file_atomic(jsonl, sample.data, sample.size));
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    o.input = jsonl;
    o.out_dir = dir;
    ab_prepare_result r;
    ab_status st = ab_prepare(&o, &r); /* a no-op when already prepared */
    if (st != AB_OK) return ab_fail_context(st, "built-in sample (%s): ", dir);
    return AB_OK;
}
