// Clang thread-safety annotations (-Wthread-safety) and a mutex that carries them.
//
// libstdc++'s std::mutex is not annotated, so state guarded by one cannot be checked.
// Mutex, MutexLock and CondVar are thin wrappers with the same cost; g++ ignores the
// attributes, the clang preset turns violations into errors. Use:
//   Mutex mu_;
//   uint64_t next_seq_ GUARDED_BY(mu_);
//   void SealLocked() REQUIRES(mu_);
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define EF_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define EF_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) EF_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY EF_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) EF_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) EF_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_AFTER(...) EF_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) EF_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) EF_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) EF_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) EF_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) EF_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS EF_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace edgeferry {

// A std::mutex the analysis can see. Not recursive.
class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() EF_THREAD_ANNOTATION(try_acquire_capability(true)) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the lock (e.g. inside a CondVar predicate).
  void AssertHeld() const EF_THREAD_ANNOTATION(assert_capability(this)) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for a scope; Unlock()/Lock() let a long computation run without it.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  void Unlock() RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  void Lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  Mutex& mutex() const { return mu_; }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// std::condition_variable over a Mutex. Wait* must be called with the lock held.
class CondVar {
 public:
  void Wait(MutexLock& lock) {
    std::unique_lock<std::mutex> ul(lock.mutex().mu_, std::adopt_lock);
    cv_.wait(ul);
    ul.release();
  }
  template <class Pred>
  void Wait(MutexLock& lock, Pred pred) {
    while (!pred()) Wait(lock);
  }
  // Returns false on timeout.
  template <class Rep, class Period>
  bool WaitFor(MutexLock& lock, std::chrono::duration<Rep, Period> d) {
    std::unique_lock<std::mutex> ul(lock.mutex().mu_, std::adopt_lock);
    const bool woke = cv_.wait_for(ul, d) == std::cv_status::no_timeout;
    ul.release();
    return woke;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace edgeferry
