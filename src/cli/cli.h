/*
 * cli.h — subcommands and their option tables.
 *
 * Every subcommand is `int cmd_<name>(int argc, char **argv)` returning the process exit code
 * (0 ok, 2 usage error, 1 runtime error: ab_exit_code()). Options are declared as a table of ab_opt;
 * ab_opts_parse() parses them with getopt_long and generates `--help` from the same table, so the help
 * text and the parser cannot disagree.
 */
#ifndef AB_CLI_H
#define AB_CLI_H

#include <stdint.h>

#include "core/status.h"

typedef enum {
    OPT_FLAG,     /* int*, set to 1 */
    OPT_INT,      /* int* */
    OPT_U64,      /* uint64_t* */
    OPT_FLOAT,    /* float* */
    OPT_STRING,   /* const char** */
    OPT_CALLBACK  /* ab_opt_callback in .cb, value passed as string (NULL for flags when metavar is NULL) */
} ab_opt_type;

typedef ab_status (*ab_opt_callback)(const char *value, void *user);

typedef struct {
    const char *name;     /* long name without "--" */
    ab_opt_type type;
    void *dest;           /* where the value goes (or user pointer for OPT_CALLBACK) */
    const char *metavar;  /* "N", "PATH", ...; NULL for flags */
    const char *help;     /* one line; the default is appended by the caller in the text */
    ab_opt_callback cb;
    int seen;             /* set by the parser when given on the command line */
} ab_opt;

typedef struct {
    const char *name;     /* "run" */
    const char *args;     /* positional synopsis, e.g. "DIR" or "" */
    const char *summary;  /* one line */
    const char *details;  /* paragraphs after the options, or NULL */
    ab_opt *opts;         /* terminated by an entry with name == NULL */
} ab_cmd_spec;

/* Parses argv (argv[0] is the subcommand name). On success *first_positional indexes the first
 * non-option argument (argc if none). Returns AB_OK; AB_ERR_USAGE with a message; or sets *help_shown
 * and returns AB_OK after printing help for --help. */
ab_status ab_opts_parse(ab_cmd_spec *spec, int argc, char **argv, int *first_positional, int *help_shown);
void ab_opts_print_help(const ab_cmd_spec *spec);
/* Was option `name` given explicitly? */
int ab_opt_seen(const ab_cmd_spec *spec, const char *name);

/* Print "attnbench <cmd>: <message>" for a failed status to stderr and return its exit code. */
int ab_cli_fail(const char *cmd, ab_status s);

/* Opens the backend named by --device: "cpu", "cuda", or "auto" (cuda when built in and a GPU answers,
 * else cpu). */
struct ab_backend;
ab_status ab_cli_open_backend(const char *device, int gpu, struct ab_backend *be);

/* The subcommands (one file each in src/cli/). */
int cmd_info(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_flops(int argc, char **argv);

#endif
