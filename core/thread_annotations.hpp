#pragma once

// Clang thread-safety annotations (no-ops elsewhere). `make analyze` with
// clang checks GUARDED_BY/REQUIRES; g++ ignores them.

#if defined(__clang__)
#define VSYSFS_TA(x) __attribute__((x))
#else
#define VSYSFS_TA(x)
#endif

#define CAPABILITY(x) VSYSFS_TA(capability(x))
#define SCOPED_CAPABILITY VSYSFS_TA(scoped_lockable)
#define GUARDED_BY(x) VSYSFS_TA(guarded_by(x))
#define PT_GUARDED_BY(x) VSYSFS_TA(pt_guarded_by(x))
#define REQUIRES(...) VSYSFS_TA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) VSYSFS_TA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) VSYSFS_TA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) VSYSFS_TA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) VSYSFS_TA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) VSYSFS_TA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) VSYSFS_TA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) VSYSFS_TA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) VSYSFS_TA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) VSYSFS_TA(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS VSYSFS_TA(no_thread_safety_analysis)
