// Child processes of a benchmark: spawning them (with extra environment, a
// pipe or a log for their output, and death with the bench), waiting for
// them under a deadline and killing them when they overrun it, the CPU time
// of a process from /proc (stat and per-thread schedstat) sampled while a
// child runs, and the machine's CPU use around a run. Used by nvmf_bench.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace ioe::bench {

// The prefix of this file's messages on stderr ("bench" until set).
void set_program_name(const char* name);

// The target (a long-lived server child) that runs now and the initiator
// (a short-lived child) that runs now, -1 for none: kill_children() kills
// them, from a signal handler or the watchdog. run_child sets g_child_pid.
extern std::atomic<pid_t> g_target_pid, g_child_pid;
// SIGKILLs both (async-signal-safe).
void kill_children();

// Starts args[0] with extra_env ("K=V", overriding ours) added to our
// environment. Its stdout goes to *out_fd when out_fd is not null, else to
// our stderr (our stdout carries only the results); with log set, its stdout
// and stderr go to that file instead. The child dies with the bench
// (PR_SET_PDEATHSIG): an nvmf_tgt left behind would spin on its core.
pid_t spawn(const std::vector<std::string>& args, int* out_fd, const std::vector<std::string>& extra_env = {},
            const std::string& log = {});

// Waits for pid until the deadline, then kills it (*killed set). Returns its
// exit status (or -1 when it had to be killed or died by a signal); its CPU
// seconds (user + system) in *cpu when given.
int wait_child(pid_t pid, std::chrono::steady_clock::time_point deadline, double* cpu = nullptr,
               bool* killed = nullptr);

// utime + stime of pid in seconds (from /proc/PID/stat), or -1.
double process_cpu_seconds(pid_t pid);

// Seconds on a CPU of every thread of pid, from /proc/PID/task/*/schedstat
// (nanoseconds, where /proc/PID/stat counts 10 ms ticks), or -1.
double process_run_seconds(pid_t pid);

struct cpu_sample {
    std::chrono::steady_clock::time_point t;
    double cpu;
};

struct child_run {
    int rc = -1;          // exit status; -1 if killed or signalled
    bool killed = false;  // overran its deadline
    std::string out;      // its stdout
    double cpu = 0;       // its user + system seconds
    bool marker_seen = false;
    std::chrono::steady_clock::time_point marker_at{};
    std::vector<cpu_sample> samples;  // sample_pid's CPU seconds over the run, every ~20 ms
};

// Runs args to completion, bounded by timeout_s. When marker is given and
// shows up in its stdout, the deadline becomes grace_s after that (the
// child printed what we wanted; it only has to exit). With sample_pid, that
// process's CPU time is sampled while the child runs.
child_run run_child(const std::vector<std::string>& args, double timeout_s, const std::vector<std::string>& env = {},
                    const char* marker = nullptr, double grace_s = 0, pid_t sample_pid = -1);

// Busy and total seconds of every CPU together (/proc/stat; steal counts as
// busy: the hypervisor gave the time to someone else).
struct cpu_times {
    double busy = 0, total = 0;
};
cpu_times machine_cpu();

// User + system seconds of this process.
double self_cpu_seconds();

// The CPU that processes other than ours used over a run: /proc/stat busy
// minus ours (this process, and the child and target CPU given), % of all
// CPUs. Starts counting when constructed.
struct machine_window {
    cpu_times m0 = machine_cpu();
    double self0 = self_cpu_seconds();
    double others_pct(double child_and_target_cpu) const;
};

// args joined with spaces (a command line for a message or the report).
std::string joined(const std::vector<std::string>& args);

// The last lines of a file (a target's log), for an error message.
std::string file_tail(const std::string& path, std::size_t bytes = 600);

}  // namespace ioe::bench
