/*
 * env.h — the environment block of run.json and of `attnbench info`: tool version and commit, build
 * features, compiler, CPU model and cores, GPU (NVML: name, driver, CUDA driver version, power limit,
 * clocks), RAPL access, host name, start time (UTC) and the command line.
 */
#ifndef AB_REPORT_ENV_H
#define AB_REPORT_ENV_H

#include <jansson.h>

#include "core/status.h"
#include "prof/energy.h"

/* {"name": "attnbench", "version", "git_commit"}: the binary, as run.json records it for the run, for each variant
 * (a resumed study may run its variants with other builds) and in the environment block. */
json_t *ab_env_tool_json(void);

/* A new JSON object describing this machine and build. m may be NULL (no GPU/RAPL section then says
 * "not probed"); argv may be NULL. */
ab_status ab_env_collect(const ab_energy_meter *m, int argc, char **argv, json_t **out);

/* CPU model name from /proc/cpuinfo ("unknown" if unreadable) and online core count. */
void ab_cpu_model(char *out, int out_size);
int ab_cpu_cores(void);

#endif
