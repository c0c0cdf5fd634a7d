/*
 * opts.c — option-table parsing (getopt_long) and the generated --help text.
 */
#include "cli/cli.h"

#include "backend/backend.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTS 96

static int count_opts(const ab_cmd_spec *spec) {
    int n = 0;
    while (spec->opts && spec->opts[n].name) n++;
    return n;
}

static ab_status parse_value(ab_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_FLAG: *(int *)o->dest = 1; return AB_OK;
    case OPT_STRING: *(const char **)o->dest = v; return AB_OK;
    case OPT_CALLBACK: return o->cb(v, o->dest);
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
            return ab_fail(AB_ERR_USAGE, "--%s: expected an integer, got '%s'", o->name, v);
        *(int *)o->dest = (int)x;
        return AB_OK;
    }
    case OPT_U64: {
        if (v[0] == '-') return ab_fail(AB_ERR_USAGE, "--%s: expected a non-negative integer, got '%s'", o->name, v);
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end)
            return ab_fail(AB_ERR_USAGE, "--%s: expected a non-negative integer, got '%s'", o->name, v);
        *(uint64_t *)o->dest = (uint64_t)x;
        return AB_OK;
    }
    case OPT_FLOAT: {
        float x = strtof(v, &end);
        if (errno || end == v || *end || !isfinite(x)) /* strtof takes "nan" and "inf": no option means them */
            return ab_fail(AB_ERR_USAGE, "--%s: expected a finite number, got '%s'", o->name, v);
        *(float *)o->dest = x;
        return AB_OK;
    }
    }
    return ab_fail(AB_ERR_INTERNAL, "--%s: unknown option type", o->name);
}

ab_status ab_opts_parse(ab_cmd_spec *spec, int argc, char **argv, int *first_positional, int *help_shown) {
    struct option lopts[MAX_OPTS + 2];
    int n = count_opts(spec);
    if (n > MAX_OPTS) return ab_fail(AB_ERR_INTERNAL, "%s: too many options", spec->name);
    for (int i = 0; i < n; i++) {
        ab_opt *o = &spec->opts[i];
        int takes_arg = !(o->type == OPT_FLAG || (o->type == OPT_CALLBACK && o->metavar == NULL));
        lopts[i] = (struct option){o->name, takes_arg ? required_argument : no_argument, NULL, 1000 + i};
        o->seen = 0;
    }
    lopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[n + 1] = (struct option){0, 0, 0, 0};
    *help_shown = 0;
    optind = 1;
    opterr = 0;
    for (;;) {
        int longindex = -1;
        int c = getopt_long(argc, argv, "+h", lopts, &longindex);
        if (c == -1) break;
        if (c == 'h') {
            ab_opts_print_help(spec);
            *help_shown = 1;
            return AB_OK;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            if (optopt && c == ':')
                return ab_fail(AB_ERR_USAGE, "%s: option %s needs a value (see attnbench %s --help)", spec->name, bad, spec->name);
            return ab_fail(AB_ERR_USAGE, "%s: unknown or incomplete option '%s' (see attnbench %s --help)", spec->name, bad,
                           spec->name);
        }
        ab_opt *o = &spec->opts[c - 1000];
        o->seen = 1;
        AB_TRY(parse_value(o, optarg));
    }
    *first_positional = optind;
    return AB_OK;
}

void ab_opts_print_help(const ab_cmd_spec *spec) {
    printf("usage: attnbench %s [options]%s%s\n\n%s\n\noptions:\n", spec->name, spec->args && *spec->args ? " " : "",
           spec->args ? spec->args : "", spec->summary);
    for (int i = 0; spec->opts && spec->opts[i].name; i++) {
        const ab_opt *o = &spec->opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
    if (spec->details) printf("\n%s\n", spec->details);
}

int ab_opt_seen(const ab_cmd_spec *spec, const char *name) {
    for (int i = 0; spec->opts && spec->opts[i].name; i++)
        if (strcmp(spec->opts[i].name, name) == 0) return spec->opts[i].seen;
    return 0;
}

int ab_cli_fail(const char *cmd, ab_status s) {
    const char *msg = ab_error();
    fprintf(stderr, "attnbench %s: %s%s\n", cmd, *msg ? msg : "error: ", *msg ? "" : ab_status_name(s));
    return ab_exit_code(s);
}

ab_status ab_cli_open_backend(const char *device, int gpu, ab_backend *be) {
    if (strcmp(device, "auto") == 0) {
        if (ab_backend_table[BACKEND_CUDA] && ab_backend_open(BACKEND_CUDA, gpu, be) == AB_OK) return AB_OK;
        ab_clear_error();
        return ab_backend_open(BACKEND_CPU, 0, be);
    }
    ab_backend_id id;
    AB_TRY(ab_backend_parse(device, &id));
    return ab_backend_open(id, gpu, be);
}
