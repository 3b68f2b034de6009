// Tasks and the per-thread ready queue. A task is an intrusive, run-once unit
// of work (a future state whose continuation is due, a resumed coroutine).
// The queue is per thread: a reactor drains its own; code that runs outside
// a reactor (unit tests of futures) can drain it with run_ready_tasks().
#pragma once

#include <cstddef>

namespace ioe {

class task {
public:
    virtual void run() noexcept = 0;
    task* _next_task = nullptr;

protected:
    ~task() = default;
};

struct task_queue {
    task* head = nullptr;
    task* tail = nullptr;
    std::size_t size = 0;

    void push(task* t) noexcept {
        t->_next_task = nullptr;
        if (tail) {
            tail->_next_task = t;
        } else {
            head = t;
        }
        tail = t;
        ++size;
    }
    task* pop() noexcept {
        task* t = head;
        if (t) {
            head = t->_next_task;
            if (!head) tail = nullptr;
            --size;
        }
        return t;
    }
    bool empty() const noexcept { return head == nullptr; }
};

task_queue& local_tasks() noexcept;

inline void schedule(task* t) noexcept { local_tasks().push(t); }

// Runs at most `limit` ready tasks of this thread; returns how many ran.
std::size_t run_ready_tasks(std::size_t limit = ~std::size_t(0)) noexcept;

}  // namespace ioe
