// The per-thread ready queue (see task.hh).
#include "runtime/task.hh"

namespace ioe {

task_queue& local_tasks() noexcept {
    static thread_local task_queue q;
    return q;
}

std::size_t run_ready_tasks(std::size_t limit) noexcept {
    task_queue& q = local_tasks();
    std::size_t n = 0;
    while (n < limit) {
        task* t = q.pop();
        if (!t) break;
        t->run();
        ++n;
    }
    return n;
}

}  // namespace ioe
