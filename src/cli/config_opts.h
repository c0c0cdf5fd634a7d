/*
 * config_opts.h — the command-line options shared by the subcommands that build a model configuration
 * (run, bench): a preset, then per-field overrides of the model, training and variant hyper-parameters.
 */
#ifndef AB_CONFIG_OPTS_H
#define AB_CONFIG_OPTS_H

#include "cli/cli.h"
#include "core/config.h"
#include "prof/flops.h"

/* Number of entries ab_config_opts_fill writes. */
#define AB_CONFIG_OPT_COUNT 31

/* Finds --preset NAME / --preset=NAME in argv (default `fallback`) and copies that preset into *p.
 * AB_ERR_USAGE naming the valid presets when unknown. */
ab_status ab_config_preset_from_argv(int argc, char **argv, const char *fallback, ab_preset *p, const char **name);
/* Writes the option table entries that override the fields of p (pointing into it) to out[]. */
void ab_config_opts_fill(ab_opt *out, ab_preset *p, const char **preset_name);
/* Checks the resolved training fields (positive sizes, probabilities in range) with messages naming the flag. */
ab_status ab_config_validate_train(const ab_train_config *t);

/* The device peak for MFU: --peak-tflops X when given (a positive number), "measured" (a timed GEMM on be),
 * else the table entry for the device name (NULL: no GPU -> null with a reason). */
ab_status ab_config_resolve_peak(const char *peak_arg, ab_backend *be, const char *device_name, ab_peak *peak);

#endif
