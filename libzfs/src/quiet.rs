//! One guard against one signal; see [`QuietChildren`].

/// Blocks SIGCHLD in the calling thread while a long ioctl runs (the mask is restored
/// on drop). A signal with a handler, pending in that thread, ends such an ioctl with
/// EINTR: a send or receive (the kernel moves the whole stream inside one ioctl, and a
/// stream cannot be restarted part way), a channel program (the kernel cancels it,
/// "Channel program was canceled") and a wait. A process that starts children often handles
/// SIGCHLD (so does valgrind, for every signal): the signal then goes to another
/// thread, or waits for the ioctl to end. Signals meant to stop the work (SIGINT,
/// SIGTERM) still do.
pub(crate) struct QuietChildren(Option<libc::sigset_t>);

impl QuietChildren {
    pub(crate) fn new() -> QuietChildren {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
        // pthread_sigmask changes only this thread's mask and fills `old`.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            // It fails only for an invalid `how`: then nothing was changed.
            QuietChildren((rc == 0).then_some(old))
        }
    }
}

impl Drop for QuietChildren {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: restores the mask saved by `new` in this same thread (the guard
            // lives on the stack of the call it protects).
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
        }
    }
}
