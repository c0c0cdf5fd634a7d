/*
 * sample.h — the built-in sample corpus (data/sample/tulu_sample.jsonl, compiled into the binary).
 *
 * What `attnbench run` trains on when no --data is given: the embedded JSONL is written to, and prepared
 * with the default options in, a cache directory keyed by the sample's hash:
 * $XDG_CACHE_HOME/attnbench/sample-<hash>/ (else ~/.cache/attnbench/..., else /tmp/attnbench-cache/...).
 * A directory already prepared (stats.json present and matching) is reused as it is.
 */
#ifndef AB_SAMPLE_H
#define AB_SAMPLE_H

#include <stddef.h>

#include "core/status.h"

/* Prepares the sample if needed and writes its corpus directory (for ab_loader_open) into out_dir. */
ab_status ab_sample_corpus_dir(char *out_dir, size_t n);

#endif
