/*
 * list.c — `attnbench list`: the variant table, with the backends that implement each variant.
 */
#include <stdio.h>
#include <string.h>

#include "attn/variant.h"
#include "cli/cli.h"

int cmd_list(int argc, char **argv) {
    int json = 0;
    ab_opt opts[] = {{"json", OPT_FLAG, &json, NULL, "print JSON"}, {NULL, 0, NULL, NULL, NULL}};
    ab_cmd_spec spec = {"list", "", "The attention variants and which backends implement each.", NULL, opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("list", s);
    if (help) return 0;
    if (!json) printf("%-16s %-42s %s\n", "variant", "title", "backends");
    else printf("[");
    for (int i = 0; i < VARIANT_COUNT; i++) {
        const ab_variant *v = ab_variants[i];
        char backends[64] = "";
        for (int b = 0; b < BACKEND_COUNT; b++) {
            if (!v->ops[b] || !ab_backend_table[b]) continue;
            if (*backends) strncat(backends, json ? "\", \"" : ", ", sizeof backends - strlen(backends) - 1);
            strncat(backends, ab_backend_name((ab_backend_id)b), sizeof backends - strlen(backends) - 1);
        }
        if (json) printf("%s{\"name\": \"%s\", \"title\": \"%s\", \"backends\": [%s%s%s]}", i ? ", " : "", v->name, v->title,
                         *backends ? "\"" : "", backends, *backends ? "\"" : "");
        else printf("%-16s %-42s %s\n", v->name, v->title, *backends ? backends : "(none yet)");
    }
    if (json) printf("]\n");
    return 0;
}
