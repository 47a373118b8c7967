/* Everything libzfs-sys binds: libzfs_core's functions and the ZFS types and
 * constants they use (sys/fs/zfs.h comes in through libzfs_core.h). */
#include <libzfs_core.h>
#include <sys/fs/zfs.h>
