/*
 * fuzz_jsonl.c — libFuzzer harness for the JSONL reader, the Tulu parser and the chat template.
 *
 * The input is served as a file (memfd) to ab_jsonl_open with a small line limit, so long-line skipping and
 * the gzip path (inputs starting with the gzip magic) are exercised; every line is parsed and, when it is a
 * conversation, tokenised through the template. Invariants checked: token and mask counts agree, every id is
 * in the vocabulary, the line numbers increase by one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/bpe.h"
#include "data/template.h"
#include "data/tulu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ab_bpe_encoder *enc;
    static ab_template_scratch *scratch;
    if (!enc && (ab_bpe_encoder_new(&enc) != AB_OK || !(scratch = ab_template_scratch_new()))) abort();
    int fd = memfd_create("fuzz_jsonl", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ab_jsonl_reader *r;
    if (ab_jsonl_open(&r, path, 4096) != AB_OK) abort();
    ab_ids ids = {0};
    ab_bytes mask = {0};
    long expected_line = 1;
    for (;;) {
        const char *line;
        size_t len;
        long lineno;
        int too_long;
        if (ab_jsonl_next(r, &line, &len, &lineno, &too_long) != AB_OK || !line) break; /* corrupt gzip ends it */
        if (lineno != expected_line++) abort();
        if (too_long) continue;
        ab_conversation c;
        char detail[200];
        if (ab_tulu_parse(line, len, &c, detail, sizeof detail) != AB_BAD_NONE) continue;
        ids.n = mask.n = 0;
        if (ab_template_encode(enc, scratch, &c, AB_LOSS_ASSISTANT, &ids, &mask) != AB_OK) abort();
        if (ids.n != mask.n) abort();
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= AB_BPE_VOCAB) abort();
        ab_conversation_free(&c);
    }
    ab_ids_free(&ids);
    ab_bytes_free(&mask);
    ab_jsonl_close(r);
    close(fd);
    return 0;
}
