//! Re-emits libzfs-sys's OpenZFS feature cfgs (`openzfs_2_2`, ...) for this crate, so
//! code here can be gated the same way.
mod openzfs_cfgs;

fn main() {
    openzfs_cfgs::emit();
}
