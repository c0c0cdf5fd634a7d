/*
 * bpe.c — GPT-2 byte-level BPE (see bpe.h for the contract).
 *
 * Tables, built once from the embedded encoder.json and vocab.bpe:
 *   token_bytes     id -> the raw bytes of the token (encoder.json keys mapped back through byte_to_unicode)
 *   vocab           raw bytes -> id (a piece that is a whole token needs no merging; tiktoken does the same)
 *   merges          (left id, right id) -> (rank, merged id), rank = line number in vocab.bpe
 * Encoding a piece: its bytes become byte tokens in a linked list; a min-heap keyed by (rank, position)
 * gives the lowest-ranked adjacent pair, leftmost first, which is merged; stale heap entries are skipped.
 * This equals GPT-2's "merge every occurrence of the best pair, left to right" because a pair containing a
 * freshly merged token always has a higher rank than the merge that made it. O(n log n) per piece.
 * Each encoder caches the ids of pieces it merged (bounded; cleared when full).
 */
#include "data/bpe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/embedded.h"

#if HAVE_PCRE2 && HAVE_JANSSON
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#define BPE_AVAILABLE 1
#else
#define BPE_AVAILABLE 0
#endif

static const char *const PRETOKEN_PATTERN =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ------------------------------------------------------------------ id arrays */

ab_status ab_ids_push(ab_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        int32_t *ids = realloc(v->ids, cap * sizeof *ids);
        if (!ids) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory for %zu ids", cap);
        v->ids = ids;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return AB_OK;
}

void ab_ids_free(ab_ids *v) {
    free(v->ids);
    memset(v, 0, sizeof *v);
}

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the well-formed sequence at p (Unicode Table 3-7), or minus the length of the maximal
 * ill-formed subpart to replace by one U+FFFD. */
static int utf8_sequence(const unsigned char *p, size_t left) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= left) return -k;
        unsigned b = p[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
    }
    return need + 1;
}

size_t ab_utf8_first_invalid(const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        int k = utf8_sequence(p + i, len - i);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return len;
}

ab_status ab_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len, size_t *n_replaced) {
    const unsigned char *p = (const unsigned char *)text;
    char *buf = malloc(3 * len + 1); /* each replaced byte grows to at most 3 */
    if (!buf) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory for %zu bytes", len);
    size_t o = 0, replaced = 0;
    for (size_t i = 0; i < len;) {
        int k = utf8_sequence(p + i, len - i);
        if (k > 0) {
            memcpy(buf + o, p + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += (size_t)-k;
            replaced++;
        }
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    *n_replaced = replaced;
    return AB_OK;
}

#if BPE_AVAILABLE

/* ------------------------------------------------------------------ byte-string hash map */

/* Open addressing map from byte strings to a uint32 value; keys live in one growing arena. Each slot keeps
 * the key's hash next to the entry index, so probing rarely touches the keys themselves. */
typedef struct {
    uint32_t hash;     /* low 32 bits of the key's hash */
    uint32_t entry;    /* entry index + 1, 0 = empty */
} map_slot_t;

typedef struct {
    uint32_t key_off, key_len, value;
} map_entry;

typedef struct {
    map_slot_t *slots; /* (cap) */
    uint32_t cap;      /* power of two */
    uint32_t n;
    map_entry *entries; /* (n) */
    uint32_t entries_cap;
    char *keys;
    size_t keys_len, keys_cap;
} bytes_map;

static uint32_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, n - i);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return (uint32_t)(h ^ (h >> 29) ^ (h >> 47));
}

static int map_init(bytes_map *m, uint32_t cap) {
    memset(m, 0, sizeof *m);
    m->cap = cap;
    m->slots = calloc(cap, sizeof *m->slots);
    return m->slots != NULL;
}

static void map_free(bytes_map *m) {
    free(m->slots);
    free(m->entries);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static void map_clear(bytes_map *m) {
    memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
    m->keys_len = 0;
}

/* Slot holding key s (hash h), or the empty slot where it would go. */
static map_slot_t *map_slot(const bytes_map *m, const char *s, size_t n, uint32_t h) {
    for (uint32_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        map_slot_t *slot = &m->slots[i];
        if (!slot->entry) return slot;
        const map_entry *e = &m->entries[slot->entry - 1];
        if (slot->hash == h && e->key_len == n && memcmp(m->keys + e->key_off, s, n) == 0) return slot;
    }
}

static int map_get(const bytes_map *m, const char *s, size_t n, uint32_t *value) {
    uint32_t e = map_slot(m, s, n, hash_bytes(s, n))->entry;
    if (!e) return 0;
    *value = m->entries[e - 1].value;
    return 1;
}

/* Inserts (the caller keeps n below cap/2). Returns 0 on allocation failure. */
static int map_put(bytes_map *m, const char *s, size_t n, uint32_t value) {
    uint32_t h = hash_bytes(s, n);
    map_slot_t *slot = map_slot(m, s, n, h);
    if (slot->entry) {
        m->entries[slot->entry - 1].value = value;
        return 1;
    }
    if (m->n == m->entries_cap) {
        uint32_t cap = m->entries_cap ? m->entries_cap * 2 : 1024;
        map_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e) return 0;
        m->entries = e;
        m->entries_cap = cap;
    }
    if (m->keys_len + n > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap * 2 : 1 << 16;
        while (cap < m->keys_len + n) cap *= 2;
        char *k = realloc(m->keys, cap);
        if (!k) return 0;
        m->keys = k;
        m->keys_cap = cap;
    }
    memcpy(m->keys + m->keys_len, s, n);
    m->entries[m->n] = (map_entry){(uint32_t)m->keys_len, (uint32_t)n, value};
    m->keys_len += n;
    slot->hash = h;
    slot->entry = ++m->n;
    return 1;
}

/* ------------------------------------------------------------------ tables */

typedef struct {
    uint32_t key;  /* merge_key(left, right); 0 = empty slot */
    uint32_t rank;
    int32_t merged;
} merge_entry;

#define MERGE_CAP (1u << 17) /* power of two, > 2 x 50000 merges */

static struct {
    char *token_blob;               /* all token bytes */
    uint32_t token_off[AB_BPE_VOCAB + 1];
    bytes_map vocab;                /* token bytes -> id */
    merge_entry *merges;            /* (MERGE_CAP) open addressing */
    int32_t byte_token[256];        /* byte -> id of its single-byte token */
    pcre2_code *regex;
    ab_status status;
    char error[512];
} tables;

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Merge keys are offset by one so that the pair (0, 0) is not the empty key. */
static uint32_t merge_key(int32_t left, int32_t right) { return ((uint32_t)left << 16 | (uint32_t)right) + 1; }

static const merge_entry *merge_find(int32_t left, int32_t right) {
    uint32_t key = merge_key(left, right);
    for (uint32_t i = (key * 2654435761u) & (MERGE_CAP - 1);; i = (i + 1) & (MERGE_CAP - 1)) {
        if (tables.merges[i].key == key) return &tables.merges[i];
        if (tables.merges[i].key == 0) return NULL;
    }
}

static void merge_insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    uint32_t key = merge_key(left, right);
    uint32_t i = (key * 2654435761u) & (MERGE_CAP - 1);
    while (tables.merges[i].key != 0 && tables.merges[i].key != key) i = (i + 1) & (MERGE_CAP - 1);
    if (tables.merges[i].key == key) return; /* a duplicate merge line: the first (lowest rank) wins */
    tables.merges[i] = (merge_entry){key, rank, merged};
}

/* GPT-2's byte_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to U+0100 onwards.
 * Fills the inverse: code point (< 324) -> byte, -1 where no byte maps. */
static void unicode_to_byte_table(int inverse[324]) {
    for (int i = 0; i < 324; i++) inverse[i] = -1;
    int next = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        inverse[printable ? b : 256 + next++] = b;
    }
}

/* Decodes a UTF-8 encoder.json key into raw token bytes; returns the length or -1 if a code point has no byte. */
static int key_to_bytes(const char *key, const int inverse[324], char *out, int cap) {
    const unsigned char *p = (const unsigned char *)key;
    int n = 0;
    while (*p) {
        unsigned cp;
        if (p[0] < 0x80) cp = *p++;
        else if ((p[0] & 0xE0) == 0xC0 && p[1]) cp = (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F), p += 2;
        else return -1;
        if (cp >= 324 || inverse[cp] < 0 || n >= cap) return -1;
        out[n++] = (char)inverse[cp];
    }
    return n;
}

static void tables_fail(ab_status s, const char *msg) {
    tables.status = s;
    snprintf(tables.error, sizeof tables.error, "%s", msg);
}

static void load_vocab(const int inverse[324]) {
    ab_blob enc = ab_embedded_encoder_json();
    json_error_t jerr;
    json_t *root = json_loadb(enc.data, enc.size, 0, &jerr);
    char msg[400];
    if (!root || !json_is_object(root) || json_object_size(root) != AB_BPE_VOCAB) {
        snprintf(msg, sizeof msg, "embedded data/gpt2/encoder.json: line %d: %s", jerr.line,
                 root ? "expected an object of 50257 tokens" : jerr.text);
        tables_fail(AB_ERR_FORMAT, msg);
        json_decref(root);
        return;
    }
    /* Token bytes are at most as long as their keys; lay them out by id in one blob. */
    char **bytes = calloc(AB_BPE_VOCAB, sizeof *bytes);
    int *lens = calloc(AB_BPE_VOCAB, sizeof *lens);
    size_t total = 0;
    if (!bytes || !lens) {
        free(bytes);
        free(lens);
        json_decref(root);
        tables_fail(AB_ERR_OOM, "tokenizer: out of memory");
        return;
    }
    const char *key;
    json_t *val;
    char buf[1024];
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        int n = key_to_bytes(key, inverse, buf, sizeof buf);
        if (id < 0 || id >= AB_BPE_VOCAB || bytes[id] || n < 0 || (n == 0 && id != AB_BPE_EOT)) {
            snprintf(msg, sizeof msg, "embedded data/gpt2/encoder.json: token '%.40s': bad or duplicate id", key);
            tables_fail(AB_ERR_FORMAT, msg);
            break;
        }
        bytes[id] = malloc((size_t)n + 1);
        if (!bytes[id]) {
            tables_fail(AB_ERR_OOM, "tokenizer: out of memory");
            break;
        }
        memcpy(bytes[id], buf, (size_t)n);
        lens[id] = n;
        total += (size_t)n;
    }
    json_decref(root);
    if (tables.status == AB_OK) {
        tables.token_blob = malloc(total + 1);
        if (!tables.token_blob || !map_init(&tables.vocab, 1u << 17)) tables_fail(AB_ERR_OOM, "tokenizer: out of memory");
    }
    size_t off = 0;
    for (int id = 0; id < AB_BPE_VOCAB && tables.status == AB_OK; id++) {
        memcpy(tables.token_blob + off, bytes[id], (size_t)lens[id]);
        tables.token_off[id] = (uint32_t)off;
        off += (size_t)lens[id];
        /* <|endoftext|> is never produced from text, so it is not in the text -> id map. */
        if (id != AB_BPE_EOT && !map_put(&tables.vocab, bytes[id], (size_t)lens[id], (uint32_t)id))
            tables_fail(AB_ERR_OOM, "tokenizer: out of memory");
    }
    tables.token_off[AB_BPE_VOCAB] = (uint32_t)off;
    for (int id = 0; id < AB_BPE_VOCAB; id++) free(bytes[id]);
    free(bytes);
    free(lens);
    for (int b = 0; b < 256 && tables.status == AB_OK; b++) {
        char c = (char)b;
        uint32_t id = 0;
        if (!map_get(&tables.vocab, &c, 1, &id)) {
            snprintf(msg, sizeof msg, "embedded data/gpt2/encoder.json: no token for byte 0x%02x", b);
            tables_fail(AB_ERR_FORMAT, msg);
        }
        tables.byte_token[b] = (int32_t)id;
    }
}

static void load_merges(const int inverse[324]) {
    ab_blob bpe = ab_embedded_vocab_bpe();
    tables.merges = calloc(MERGE_CAP, sizeof *tables.merges);
    if (!tables.merges) {
        tables_fail(AB_ERR_OOM, "tokenizer: out of memory");
        return;
    }
    const char *p = bpe.data, *end = bpe.data + bpe.size;
    int line = 0;
    uint32_t rank = 0;
    char msg[400];
    while (p < end && tables.status == AB_OK) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        char text[1024];
        size_t n = (size_t)(eol - p);
        if (n && p[n - 1] == '\r') n--;
        if (n >= sizeof text) {
            snprintf(msg, sizeof msg, "embedded data/gpt2/vocab.bpe:%d: line longer than %zu bytes", line, sizeof text);
            tables_fail(AB_ERR_FORMAT, msg);
            return;
        }
        memcpy(text, p, n);
        text[n] = '\0';
        p = eol + 1;
        if (n == 0 || (line == 1 && text[0] == '#')) continue;
        char *space = strchr(text, ' ');
        char left[512], right[512], both[1024];
        int nl = -1, nr = -1;
        if (space) {
            *space = '\0';
            nl = key_to_bytes(text, inverse, left, sizeof left);
            nr = key_to_bytes(space + 1, inverse, right, sizeof right);
        }
        uint32_t idl, idr, idm;
        int ok = nl > 0 && nr > 0 && map_get(&tables.vocab, left, (size_t)nl, &idl) &&
                 map_get(&tables.vocab, right, (size_t)nr, &idr);
        if (ok) {
            memcpy(both, left, (size_t)nl);
            memcpy(both + nl, right, (size_t)nr);
            ok = map_get(&tables.vocab, both, (size_t)(nl + nr), &idm);
        }
        if (!ok) {
            snprintf(msg, sizeof msg, "embedded data/gpt2/vocab.bpe:%d: expected 'A B' where A, B and AB are tokens",
                     line);
            tables_fail(AB_ERR_FORMAT, msg);
            return;
        }
        merge_insert((int32_t)idl, (int32_t)idr, rank++, (int32_t)idm);
    }
}

static void load_regex(void) {
    int err;
    PCRE2_SIZE off;
    tables.regex = pcre2_compile((PCRE2_SPTR)PRETOKEN_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off,
                                 NULL);
    if (!tables.regex) {
        tables_fail(AB_ERR_INTERNAL, "tokenizer: the pre-tokenisation pattern does not compile");
        return;
    }
    /* Without JIT (e.g. an unsupported CPU) pcre2_match interprets the pattern: slower, same result. */
    pcre2_jit_compile(tables.regex, PCRE2_JIT_COMPLETE);
}

static void load_tables(void) {
    int inverse[324];
    unicode_to_byte_table(inverse);
    tables.status = AB_OK;
    load_vocab(inverse);
    if (tables.status == AB_OK) load_merges(inverse);
    if (tables.status == AB_OK) load_regex();
}

ab_status ab_bpe_load(void) {
    pthread_once(&tables_once, load_tables);
    if (tables.status != AB_OK) return ab_fail(tables.status, "%s", tables.error);
    return AB_OK;
}

const char *ab_bpe_token_bytes(int32_t id, size_t *len) {
    if (id < 0 || id >= AB_BPE_VOCAB || !tables.token_blob) return NULL;
    *len = tables.token_off[id + 1] - tables.token_off[id];
    return tables.token_blob + tables.token_off[id];
}

/* ------------------------------------------------------------------ encoder */

#define CACHE_MAX_PIECE 256        /* longer pieces are merged every time */
#define CACHE_MAX_ENTRIES (1u << 16)

typedef struct {
    uint32_t rank;
    uint32_t pos;   /* node index of the pair's left token */
    int32_t left, right;
} heap_item;

struct ab_bpe_encoder {
    pcre2_match_data *match;
    bytes_map cache;           /* piece bytes -> offset into cache_ids; value's ids end at the next (len stored) */
    ab_ids cache_ids;          /* per entry: count, then the ids */
    /* scratch for merging one piece */
    int32_t *tok;              /* (piece len) token of each live node */
    uint32_t *next, *prev;     /* (piece len) linked list; UINT32_MAX = none */
    heap_item *heap;
    size_t heap_n, scratch_cap, heap_cap;
};

ab_status ab_bpe_encoder_new(ab_bpe_encoder **out) {
    *out = NULL;
    AB_TRY(ab_bpe_load());
    ab_bpe_encoder *e = calloc(1, sizeof *e);
    if (!e) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
    e->match = pcre2_match_data_create_from_pattern(tables.regex, NULL);
    if (!e->match || !map_init(&e->cache, 2 * CACHE_MAX_ENTRIES)) {
        ab_bpe_encoder_free(e);
        return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
    }
    *out = e;
    return AB_OK;
}

void ab_bpe_encoder_free(ab_bpe_encoder *e) {
    if (!e) return;
    pcre2_match_data_free(e->match);
    map_free(&e->cache);
    ab_ids_free(&e->cache_ids);
    free(e->tok);
    free(e->next);
    free(e->prev);
    free(e->heap);
    free(e);
}

static int heap_less(const heap_item *a, const heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(ab_bpe_encoder *e, heap_item it) {
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        heap_item *h = realloc(e->heap, cap * sizeof *h);
        if (!h) return 0;
        e->heap = h;
        e->heap_cap = cap;
    }
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&it, &e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = it;
    return 1;
}

static heap_item heap_pop(ab_bpe_encoder *e) {
    heap_item top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= e->heap_n) break;
        if (child + 1 < e->heap_n && heap_less(&e->heap[child + 1], &e->heap[child])) child++;
        if (!heap_less(&e->heap[child], &last)) break;
        e->heap[i] = e->heap[child];
        i = child;
    }
    if (e->heap_n) e->heap[i] = last;
    return top;
}

/* Pushes the pair starting at node `pos` if it is a known merge. */
static int push_pair(ab_bpe_encoder *e, uint32_t pos) {
    uint32_t nx = e->next[pos];
    if (nx == UINT32_MAX) return 1;
    const merge_entry *m = merge_find(e->tok[pos], e->tok[nx]);
    return !m || heap_push(e, (heap_item){m->rank, pos, e->tok[pos], e->tok[nx]});
}

/* Merges one piece of n bytes and appends its ids to out. */
static ab_status merge_piece(ab_bpe_encoder *e, const unsigned char *piece, size_t n, ab_ids *out) {
    if (n > e->scratch_cap) {
        size_t cap = n * 2;
        int32_t *tok = realloc(e->tok, cap * sizeof *tok);
        if (tok) e->tok = tok;
        uint32_t *nx = realloc(e->next, cap * sizeof *nx);
        if (nx) e->next = nx;
        uint32_t *pv = realloc(e->prev, cap * sizeof *pv);
        if (pv) e->prev = pv;
        if (!tok || !nx || !pv) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory for a %zu-byte piece", n);
        e->scratch_cap = cap;
    }
    e->heap_n = 0;
    for (size_t i = 0; i < n; i++) {
        e->tok[i] = tables.byte_token[piece[i]];
        e->next[i] = i + 1 < n ? (uint32_t)(i + 1) : UINT32_MAX;
        e->prev[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (!push_pair(e, (uint32_t)i)) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
    while (e->heap_n) {
        heap_item it = heap_pop(e);
        uint32_t nx = e->next[it.pos];
        /* Stale: the left node was merged away (tok -1), or either side changed since the push. */
        if (e->tok[it.pos] != it.left || nx == UINT32_MAX || e->tok[nx] != it.right) continue;
        const merge_entry *m = merge_find(it.left, it.right);
        e->tok[it.pos] = m->merged;
        e->tok[nx] = -1;
        e->next[it.pos] = e->next[nx];
        if (e->next[nx] != UINT32_MAX) e->prev[e->next[nx]] = it.pos;
        if (!push_pair(e, it.pos)) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
        if (e->prev[it.pos] != UINT32_MAX && !push_pair(e, e->prev[it.pos]))
            return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
    }
    for (uint32_t i = 0; i != UINT32_MAX; i = e->next[i]) AB_TRY(ab_ids_push(out, e->tok[i]));
    return AB_OK;
}

/* Ids of one pre-tokenised piece: a whole token, a cached piece, or a fresh merge (then cached). */
static ab_status encode_piece(ab_bpe_encoder *e, const char *piece, size_t n, ab_ids *out) {
    uint32_t value;
    if (map_get(&tables.vocab, piece, n, &value)) return ab_ids_push(out, (int32_t)value);
    int cacheable = n <= CACHE_MAX_PIECE;
    if (cacheable && map_get(&e->cache, piece, n, &value)) {
        int32_t count = e->cache_ids.ids[value];
        for (int32_t k = 1; k <= count; k++) AB_TRY(ab_ids_push(out, e->cache_ids.ids[value + (uint32_t)k]));
        return AB_OK;
    }
    size_t first = out->n;
    AB_TRY(merge_piece(e, (const unsigned char *)piece, n, out));
    if (!cacheable) return AB_OK;
    if (e->cache.n >= CACHE_MAX_ENTRIES || e->cache_ids.n > (1u << 24)) {
        map_clear(&e->cache);
        e->cache_ids.n = 0;
    }
    uint32_t at = (uint32_t)e->cache_ids.n;
    AB_TRY(ab_ids_push(&e->cache_ids, (int32_t)(out->n - first)));
    for (size_t k = first; k < out->n; k++) AB_TRY(ab_ids_push(&e->cache_ids, out->ids[k]));
    if (!map_put(&e->cache, piece, n, at)) return ab_fail(AB_ERR_OOM, "tokenizer: out of memory");
    return AB_OK;
}

ab_status ab_bpe_encode(ab_bpe_encoder *e, const char *text, size_t len, ab_ids *out) {
    char *clean = NULL;
    if (ab_utf8_first_invalid(text, len) != len) {
        size_t replaced;
        AB_TRY(ab_utf8_sanitize(text, len, &clean, &len, &replaced));
        text = clean;
    }
    ab_status st = AB_OK;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->match);
    for (size_t at = 0; at < len && st == AB_OK;) {
        int rc = pcre2_match(tables.regex, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK, e->match, NULL);
        /* Every position starts a match (the alternatives cover letters, numbers, spaces and the rest). */
        if (rc <= 0 || ov[0] != at || ov[1] <= at) {
            st = ab_fail(AB_ERR_INTERNAL, "tokenizer: pre-tokenisation stopped at byte %zu (pcre2 %d)", at, rc);
            break;
        }
        st = encode_piece(e, text + at, ov[1] - at, out);
        at = ov[1];
    }
    free(clean);
    return st;
}

#else /* !BPE_AVAILABLE */

ab_status ab_bpe_load(void) {
    return ab_fail(AB_ERR_UNSUPPORTED, "tokenizer: this build has no PCRE2 or no jansson (install them and rebuild)");
}
ab_status ab_bpe_encoder_new(ab_bpe_encoder **out) {
    *out = NULL;
    return ab_bpe_load();
}
void ab_bpe_encoder_free(ab_bpe_encoder *e) { (void)e; }
ab_status ab_bpe_encode(ab_bpe_encoder *e, const char *text, size_t len, ab_ids *out) { return ab_bpe_load(); }
const char *ab_bpe_token_bytes(int32_t id, size_t *len) { return NULL; }

#endif

ab_status ab_bpe_decode(const int32_t *ids, size_t n, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    AB_TRY(ab_bpe_load());
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        if (!ab_bpe_token_bytes(ids[i], &k))
            return ab_fail(AB_ERR_USAGE, "decode: id %d at position %zu is outside the vocabulary (0..%d)", ids[i], i,
                           AB_BPE_VOCAB - 1);
        total += k;
    }
    char *buf = malloc(total + 1);
    if (!buf) return ab_fail(AB_ERR_OOM, "decode: out of memory for %zu bytes", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        const char *b = ab_bpe_token_bytes(ids[i], &k);
        memcpy(buf + o, b, k);
        o += k;
    }
    buf[o] = '\0';
    *text = buf;
    *len = o;
    return AB_OK;
}
