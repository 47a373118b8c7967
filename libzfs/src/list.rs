//! Listing datasets and snapshots without the CLI.
//!
//! libzfs_core has no list call (OpenZFS issue 9008). We list with a read-only channel
//! program (`lzc_channel_program_nosync` running `zfs.list.children`,
//! `zfs.list.snapshots` and `zfs.get_prop`):
//!
//! - it works on every OpenZFS we support (channel programs exist since 0.8), while
//!   `lzc_get_props` only arrived in 2.3 and reads one dataset per call;
//! - one ioctl returns a whole tree with the properties replication needs, instead of
//!   one call per dataset and per snapshot;
//! - "nosync" programs run in open context, read-only: they cannot change the pool
//!   and do not wait for a transaction group.
//!
//! The cost: channel programs need root (or the `program` permission is not
//! delegable), and a program has instruction and memory limits. We run with the
//! kernel's maximum limits; a tree whose snapshots are too many for one program
//! (about 200,000) is listed again in two steps: its datasets in one program, then
//! each dataset's snapshots in one program each. A program runs on one CPU: a tree
//! with snapshots is listed by up to four programs at once, its root's children's
//! subtrees shared among them (each such part again in two steps when too large for
//! one program). And every property read looks its
//! dataset up by name again: cheap for a mounted filesystem, whose dataset stays in
//! memory, but costly for an unmounted one (a backup target), which the kernel loads
//! and evicts each time. [`Fields`] reads only what a caller needs.
//!
//! One program here changes the pool: [`Zfs::snapshot_written`], which decides which
//! datasets get a snapshot where `written` counts what was written a moment ago.

use crate::error::{zfs_error, Error, Op, Result};
use crate::name::{DatasetName, SnapshotName};
use crate::nvlist::{NvList, NvListRef};
use crate::zfs::{ProgramLimits, Zfs};

/// The type of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A filesystem.
    Filesystem,
    /// A volume.
    Volume,
    /// A snapshot.
    Snapshot,
    /// A bookmark.
    Bookmark,
}

/// A dataset (filesystem or volume) with the properties replication needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    /// Its name.
    pub name: DatasetName,
    /// Filesystem or volume.
    pub kind: Kind,
    /// `guid`.
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation` (seconds).
    pub creation: u64,
    /// `used` bytes.
    pub used: u64,
    /// `referenced` bytes.
    pub referenced: u64,
    /// `available` bytes.
    pub available: u64,
    /// `written`: bytes written since the most recent snapshot.
    pub written: u64,
    /// `receive_resume_token`, when an interrupted resumable receive left one.
    pub receive_resume_token: Option<String>,
    /// `encryption`: `off`, or `on` for an encrypted dataset. Channel programs
    /// cannot read the cipher (OpenZFS 2.3 reports `off`), so the listing decides
    /// from `keystatus` and gives `on`; a cipher name appears only where the kernel
    /// reports one.
    pub encryption: String,
    /// `encryptionroot`, when the kernel reports it to channel programs (2.3 does
    /// not: `None`).
    pub encryption_root: Option<String>,
    /// `keystatus` (`available`, `unavailable`), when encrypted.
    pub key_status: Option<String>,
    /// `origin`, for a clone.
    pub origin: Option<String>,
    /// The user properties the listing asked for (see [`Fields::with_user`]) that have
    /// a value here, set on this dataset or inherited.
    pub user: Vec<UserProperty>,
}

/// A user property (`module:name`) of a dataset, and where its value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserProperty {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The dataset it is set on (this one when set locally, an ancestor when
    /// inherited), or the kernel's marker for a received value.
    pub setpoint: String,
}

/// A snapshot with the properties replication needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: SnapshotName,
    /// `guid`.
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation` (seconds).
    pub creation: u64,
    /// `used` bytes.
    pub used: u64,
    /// `referenced` bytes.
    pub referenced: u64,
    /// `written`: bytes written between the previous snapshot and this one.
    pub written: u64,
    /// `userrefs`: the number of holds.
    pub userrefs: u64,
    /// The tags of its holds, when the listing read `userrefs` (it counts them):
    /// which holds are whose without one request per snapshot.
    pub holds: Option<Vec<String>>,
}

/// The properties a listing reads; a field whose property is not read is 0 (or
/// `None`). Each property costs a lookup of its dataset or snapshot in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    /// Of datasets, comma-separated.
    dataset: &'static str,
    /// Of the listing's root only (beside `dataset`), comma-separated.
    root: &'static str,
    /// Of snapshots, comma-separated.
    snapshot: &'static str,
    /// User properties of datasets, comma-separated.
    user: &'static str,
}

impl Fields {
    /// These fields and the user properties `names` (comma-separated `module:name`)
    /// of each dataset, with where each value is set ([`DatasetInfo::user`]).
    #[must_use]
    pub const fn with_user(self, names: &'static str) -> Fields {
        Fields {
            user: names,
            ..self
        }
    }

    /// Every field of [`DatasetInfo`] and [`SnapshotInfo`].
    pub const ALL: Fields = Fields {
        dataset: "type,guid,createtxg,creation,used,referenced,available,written,\
                  receive_resume_token,encryption,encryptionroot,keystatus,origin",
        root: "",
        snapshot: "guid,createtxg,creation,used,referenced,written,userrefs",
        user: "",
    };

    /// What replication decides from: a dataset's kind, `guid`, `referenced`,
    /// `available`, `written`, resume token and whether it is encrypted
    /// (`encryption` is `on` or `off`, from `keystatus`); a snapshot's `guid`,
    /// `createtxg`, `creation` and `userrefs`. About half the kernel work of
    /// [`Fields::ALL`].
    pub const REPLICATION: Fields = Fields {
        dataset: "type,guid,referenced,available,written,receive_resume_token,keystatus",
        root: "",
        snapshot: "guid,createtxg,creation,userrefs",
        user: "",
    };

    /// What replication needs of its source: [`Fields::REPLICATION`] without the
    /// kind, free space and resume token, without a snapshot's `creation`, and the
    /// `guid` of the root only (every property read opens the dataset's objset in the
    /// kernel: for an unmounted dataset that is most of a listing's cost).
    pub const SOURCE: Fields = Fields {
        dataset: "referenced,written,keystatus",
        root: "guid",
        snapshot: "guid,createtxg,userrefs",
        user: "",
    };

    /// What replication needs of its target: [`Fields::REPLICATION`] without the
    /// kind, size and encryption, without a snapshot's `creation`, and the `guid` of
    /// the root only.
    pub const TARGET: Fields = Fields {
        dataset: "available,written,receive_resume_token",
        root: "guid",
        snapshot: "guid,createtxg,userrefs",
        user: "",
    };

    /// What a listing of names shows beside them, as `zfs list -o name,type,guid,createtxg`
    /// of snapshots: a dataset's kind, a snapshot's `guid` and `createtxg`.
    pub const LISTING: Fields = Fields {
        dataset: "type",
        root: "",
        snapshot: "guid,createtxg",
        user: "",
    };

    /// No property: the names of datasets (and snapshots) only.
    pub const NAMES: Fields = Fields {
        dataset: "",
        root: "",
        snapshot: "",
        user: "",
    };
}

const LIST_PROGRAM: &str = r#"
local args = ...
local root = args["root"]
local recursive = args["recursive"]
local snaps = args["snapshots"]
local out = {}
local n = 0
local function names(csv)
    local t = {}
    for p in string.gmatch(csv, "[^,%s]+") do table.insert(t, p) end
    return t
end
-- A snapshot's userrefs counted from its holds, whose tags come along (when there
-- are any): zfs.get_prop would open the snapshot's objset to check that the
-- property applies, which zfs.list.holds does not.
local function holds(snap, t)
    local tags, n = {}, 0
    for tag in zfs.list.holds(snap) do
        tags[tag] = true
        n = n + 1
    end
    t["userrefs"] = n
    if n > 0 then t["holds"] = tags end
end
local function props(ds, names)
    local t = {}
    for _, p in ipairs(names) do
        if p == "userrefs" then
            holds(ds, t)
        else
            local v = zfs.get_prop(ds, p)
            if v ~= nil then t[p] = v end
        end
    end
    return t
end
local userprops = names(args["userprops"])
local dsprops = names(args["dsprops"])
local rootprops = names(args["dsprops"] .. "," .. args["rootprops"])
local snapprops = names(args["snapprops"])
local tokens = false
for _, p in ipairs(dsprops) do tokens = tokens or p == "receive_resume_token" end
-- A dataset whose name leaves no room for "@x" or "/x" (255 bytes in all) can have
-- no snapshots or children; and the kernel's iterators assert (hanging the caller)
-- when asked for them, so they are not asked.
local function room(ds) return #ds <= 253 end
local function visit(ds)
    n = n + 1
    local t = props(ds, ds == root and rootprops or dsprops)
    if #userprops > 0 then
        local u = {}
        for _, p in ipairs(userprops) do
            local v, src = zfs.get_prop(ds, p)
            if v ~= nil then u[p] = {value = v, setpoint = src} end
        end
        t["@user"] = u
    end
    -- An interrupted incremental receive keeps its state (and token) in ds/%recv.
    if tokens and t["receive_resume_token"] == nil and #ds <= 249 and zfs.exists(ds .. "/%recv") then
        t["receive_resume_token"] = zfs.get_prop(ds .. "/%recv", "receive_resume_token")
    end
    if snaps and room(ds) then
        local s = {}
        for snap in zfs.list.snapshots(ds) do
            s[snap] = props(snap, snapprops)
        end
        t["snapshots"] = s
    end
    out[ds] = t
    if recursive and room(ds) then
        for child in zfs.list.children(ds) do
            visit(child)
        end
    end
end
-- Datasets named by the caller instead of the root (each with its descendants when
-- recursive); those destroyed since the caller learned their names are left out.
if args["names"] then
    for _, ds in ipairs(args["names"]) do
        if zfs.exists(ds) then visit(ds) end
    end
    return {datasets = out, count = n}
end
if not zfs.exists(root) then
    return {missing = root}
end
visit(root)
local ret = {datasets = out, count = n}
-- The names of the root's children, for a caller that lists them apart.
if args["children"] and room(root) then
    local c = {}
    for child in zfs.list.children(root) do c[child] = true end
    ret["children"] = c
end
return ret
"#;

/// The `datasets` a tree program returned (LIST_PROGRAM, props' LOCAL_PROPS_PROGRAM),
/// or `None` when it found no root (`{missing = root}`).
pub(crate) fn program_datasets(out: &NvList, op: Op) -> Result<Option<&NvListRef>> {
    let broken = |detail: &str| Error::Protocol {
        op,
        detail: detail.into(),
    };
    let ret = out
        .get_nvlist("return")
        .ok_or_else(|| broken("channel program returned nothing"))?;
    if ret.contains("missing") {
        return Ok(None);
    }
    ret.get_nvlist("datasets")
        .map(Some)
        .ok_or_else(|| broken("no datasets in the result"))
}

/// What one listing covers and reads, and the limits of its program.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    /// With descendants.
    pub recursive: bool,
    /// With snapshots.
    pub snapshots: bool,
    /// The properties read.
    pub fields: Fields,
    /// Of each program.
    pub limits: ProgramLimits,
    /// Programs at once for a recursive listing with snapshots (1: one program).
    pub parallel: usize,
}

impl Scope {
    /// Programs at once by default: one per CPU, at most four.
    #[must_use]
    pub fn default_parallel() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }
}

/// One dataset of a listing, with its snapshots when they were asked for.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The dataset.
    pub dataset: DatasetInfo,
    /// Its snapshots in creation order (empty unless asked for).
    pub snapshots: Vec<SnapshotInfo>,
}

impl Zfs {
    /// Lists `root` (and its descendants with `recursive`), parents before children,
    /// with their snapshots when `snapshots` is true. Returns `Ok(None)` when `root`
    /// does not exist.
    pub fn list(
        &self,
        root: &DatasetName,
        recursive: bool,
        snapshots: bool,
    ) -> Result<Option<Vec<Listed>>> {
        self.list_fields(root, recursive, snapshots, Fields::ALL)
    }

    /// [`Zfs::list`] reading only the properties of `fields`.
    pub fn list_fields(
        &self,
        root: &DatasetName,
        recursive: bool,
        snapshots: bool,
        fields: Fields,
    ) -> Result<Option<Vec<Listed>>> {
        let scope = Scope {
            recursive,
            snapshots,
            fields,
            limits: ProgramLimits::MAX,
            parallel: Scope::default_parallel(),
        };
        self.list_within(root, scope)
    }

    /// [`Zfs::list_fields`] with each program held to `scope.limits` (for tests of
    /// the two-step listing: a small memory limit makes a small tree too large).
    #[doc(hidden)]
    pub fn list_within(&self, root: &DatasetName, scope: Scope) -> Result<Option<Vec<Listed>>> {
        if scope.recursive && scope.snapshots && scope.parallel > 1 {
            return self.list_split(root, scope);
        }
        self.list_whole(root, scope)
    }

    /// One program for the tree, or two steps when it is too large for one.
    fn list_whole(&self, root: &DatasetName, scope: Scope) -> Result<Option<Vec<Listed>>> {
        match self.list_program(root, scope) {
            Err(e) if scope.recursive && scope.snapshots && over_limits(&e) => {
                self.list_in_steps(root, scope)
            }
            other => other,
        }
    }

    /// A tree too large for one program: its datasets, then each one's snapshots.
    fn list_in_steps(&self, root: &DatasetName, scope: Scope) -> Result<Option<Vec<Listed>>> {
        let datasets = Scope {
            snapshots: false,
            ..scope
        };
        let Some(mut tree) = self.list_program(root, datasets)? else {
            return Ok(None);
        };
        let one = Scope {
            recursive: false,
            ..scope
        };
        for l in &mut tree {
            // A dataset destroyed since keeps its (empty) place.
            if let Some(mut d) = self.list_program(&l.dataset.name, one)? {
                l.snapshots = d.pop().map(|o| o.snapshots).unwrap_or_default();
            }
        }
        Ok(Some(tree))
    }

    /// A tree listed by `scope.parallel` programs at once: each program reads every
    /// dataset and snapshot by name, one after the other, so a tree of many children
    /// lists in a fraction of the time on as many CPUs. The root comes first, alone,
    /// with its children's names (and down a chain of only children); then its
    /// children's subtrees, a few at a time, in programs taken from a shared queue.
    /// A subtree created meanwhile is not listed; one destroyed is left out.
    fn list_split(&self, root: &DatasetName, scope: Scope) -> Result<Option<Vec<Listed>>> {
        let alone = Scope {
            recursive: false,
            ..scope
        };
        let mut tree = Vec::new();
        let mut at = root.clone();
        let children = loop {
            let Some((mut listed, children)) = self.list_one(&at, alone)? else {
                // The root is missing, or a lone child went since its parent's listing.
                return Ok((!tree.is_empty()).then_some(tree));
            };
            tree.append(&mut listed);
            match <[DatasetName; 1]>::try_from(children) {
                Ok([only]) => at = only,
                Err(children) => break children,
            }
        };
        if children.is_empty() {
            return Ok(Some(tree));
        }
        let per = children.len().div_ceil(scope.parallel * 4);
        let chunks: Vec<&[DatasetName]> = children.chunks(per).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let worker = || -> Result<Vec<Listed>> {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    return Ok(got);
                };
                match self.list_names(root, chunk, scope) {
                    Ok(mut l) => got.append(&mut l),
                    Err(e) if over_limits(&e) => {
                        for child in *chunk {
                            got.extend(self.list_whole(child, scope)?.into_iter().flatten());
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let parts = std::thread::scope(|s| {
            let others: Vec<_> = (1..scope.parallel.min(chunks.len()))
                .map(|_| s.spawn(worker))
                .collect();
            let mut parts = vec![worker()];
            parts.extend(others.into_iter().map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(Error::Protocol {
                        op: Op::List,
                        detail: "a listing thread panicked".into(),
                    })
                })
            }));
            parts
        });
        for part in parts {
            tree.append(&mut part?);
        }
        sort_tree(&mut tree);
        Ok(Some(tree))
    }

    /// LIST_PROGRAM with `args`, its errors as the listing's of `root`.
    fn run_list(&self, root: &DatasetName, args: &NvList, scope: Scope) -> Result<NvList> {
        self.channel_program(root.pool(), LIST_PROGRAM, args, scope.limits, false)
            .map_err(|e| relabel(e, Op::List, root))
    }

    /// `root` alone, and its children's names.
    fn list_one(
        &self,
        root: &DatasetName,
        scope: Scope,
    ) -> Result<Option<(Vec<Listed>, Vec<DatasetName>)>> {
        let mut args = program_args(root, scope)?;
        args.insert("children", &true)?;
        let out = self.run_list(root, &args, scope)?;
        let Some(datasets) = program_datasets(&out, Op::List)? else {
            return Ok(None);
        };
        let listed = listed(datasets)?;
        let mut names = Vec::new();
        let ret = out.get_nvlist("return");
        for (name, _) in ret
            .and_then(|r| r.get_nvlist("children"))
            .iter()
            .flat_map(|c| c.iter())
        {
            names.push(DatasetName::new(name)?);
        }
        names.sort();
        Ok(Some((listed, names)))
    }

    /// The datasets `names` (with their descendants when `scope.recursive`) in one
    /// program, as in a listing of `root`.
    fn list_names(
        &self,
        root: &DatasetName,
        names: &[DatasetName],
        scope: Scope,
    ) -> Result<Vec<Listed>> {
        let mut args = program_args(root, scope)?;
        let names: Vec<&str> = names.iter().map(DatasetName::as_str).collect();
        args.insert("names", &names)?;
        let out = self.run_list(root, &args, scope)?;
        match program_datasets(&out, Op::List)? {
            Some(datasets) => listed(datasets),
            None => Ok(Vec::new()),
        }
    }

    /// One program listing `root`, without the two-step fallback (for tests).
    #[doc(hidden)]
    pub fn list_program(&self, root: &DatasetName, scope: Scope) -> Result<Option<Vec<Listed>>> {
        let args = program_args(root, scope)?;
        let out = self.run_list(root, &args, scope)?;
        let Some(datasets) = program_datasets(&out, Op::List)? else {
            return Ok(None);
        };
        let mut v = listed(datasets)?;
        sort_tree(&mut v);
        Ok(Some(v))
    }

    /// One dataset's properties, or `None` when it does not exist.
    pub fn dataset(&self, name: &DatasetName) -> Result<Option<DatasetInfo>> {
        Ok(self
            .list(name, false, false)?
            .and_then(|mut v| v.pop())
            .map(|l| l.dataset))
    }

    /// The snapshots of one dataset in creation order, or `None` when it does not
    /// exist.
    pub fn snapshots(&self, name: &DatasetName) -> Result<Option<Vec<SnapshotInfo>>> {
        Ok(self
            .list(name, false, true)?
            .and_then(|mut v| v.pop())
            .map(|l| l.snapshots))
    }
}

/// The arguments of LIST_PROGRAM for a listing of `root` in `scope`.
fn program_args(root: &DatasetName, scope: Scope) -> Result<NvList> {
    let fields = scope.fields;
    let mut args = NvList::new();
    args.insert("root", root.as_str())?;
    args.insert("recursive", &scope.recursive)?;
    args.insert("snapshots", &scope.snapshots)?;
    args.insert("dsprops", fields.dataset)?;
    args.insert("rootprops", fields.root)?;
    args.insert("snapprops", fields.snapshot)?;
    args.insert("userprops", fields.user)?;
    Ok(args)
}

/// The datasets of a LIST_PROGRAM result, each with its snapshots in creation order.
fn listed(datasets: &NvListRef) -> Result<Vec<Listed>> {
    let mut v = Vec::new();
    for (name, value) in datasets.iter() {
        let Some(p) = value.as_nvlist() else { continue };
        let mut snaps = Vec::new();
        if let Some(s) = p.get_nvlist("snapshots") {
            for (sname, sv) in s.iter() {
                if let Some(sp) = sv.as_nvlist() {
                    snaps.push(snapshot_info(sname, sp)?);
                }
            }
        }
        snaps.sort_by_key(|s| s.createtxg);
        v.push(Listed {
            dataset: dataset_info(name, p)?,
            snapshots: snaps,
        });
    }
    Ok(v)
}

/// Parents before children; siblings by name.
fn sort_tree(v: &mut [Listed]) {
    v.sort_by(|a, b| {
        let (a, b) = (a.dataset.name.as_str(), b.dataset.name.as_str());
        a.split('/').cmp(b.split('/'))
    });
}

/// A snapshot decided in syncing context: the one sync program beside the listings'
/// read-only ones, kept with them because it answers as they do.
impl Zfs {
    /// Takes those of `snaps` whose dataset was written to since its newest snapshot,
    /// or has no snapshot, in one transaction group. Returns them, and those of `snaps`
    /// that existed already (left alone: another run may have taken the same name a
    /// moment before), in the order asked.
    ///
    /// `written` is read in syncing context, where what was written a moment ago has
    /// reached the disk: no pool sync is needed first, so deciding and snapshotting
    /// cost one transaction group, where a sync, a read of `written` and
    /// [`Zfs::snapshot`] cost two. As with that call, they must all be in one pool and
    /// are taken all or none: each is checked before any is taken. The snapshots come
    /// back with their `guid`, `createtxg` and `creation`.
    ///
    /// A channel program: root only.
    pub fn snapshot_written(&self, snaps: &[SnapshotName]) -> Result<Vec<SnapshotInfo>> {
        const PROGRAM: &str = r#"
local args = ...
local want, had = {}, {}
for _, s in ipairs(args["snaps"]) do
    local ds = string.match(s, "^[^@]+")
    if not zfs.exists(ds) then return {failed = s, errno = 2} end -- ENOENT
    if zfs.exists(s) then
        table.insert(had, s)
    elseif zfs.get_prop(ds, "written") > 0 or zfs.list.snapshots(ds)() == nil then
        local e = zfs.check.snapshot(s)
        if e ~= 0 then return {failed = s, errno = e} end
        table.insert(want, s)
    end
end
for _, s in ipairs(want) do
    local e = zfs.sync.snapshot(s)
    if e ~= 0 then return {failed = s, errno = e} end
    table.insert(had, s)
end
local taken = {}
for _, s in ipairs(had) do
    taken[s] = {guid = zfs.get_prop(s, "guid"), createtxg = zfs.get_prop(s, "createtxg"),
                creation = zfs.get_prop(s, "creation")}
end
return {taken = taken}
"#;
        let Some(first) = snaps.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = snaps.iter().find(|s| s.pool() != first.pool()) {
            return Err(zfs_error(libc::EXDEV, Op::Snapshot, other.as_str(), None));
        }
        let mut args = NvList::new();
        let names: Vec<&str> = snaps.iter().map(SnapshotName::as_str).collect();
        args.insert("snaps", &names)?;
        let out = self
            .channel_program(first.pool(), PROGRAM, &args, ProgramLimits::default(), true)
            .map_err(|e| relabel(e, Op::Snapshot, &first.dataset()))?;
        let broken = |detail: &str| Error::Protocol {
            op: Op::Snapshot,
            detail: detail.into(),
        };
        let ret = out
            .get_nvlist("return")
            .ok_or_else(|| broken("channel program returned nothing"))?;
        if let Some(failed) = ret.get("failed").and_then(|v| v.as_str()) {
            let errno = ret.get("errno").and_then(|v| v.as_i64()).unwrap_or(0) as i32;
            let mut list = NvList::new();
            list.insert(failed, &errno)?;
            return Err(zfs_error(errno, Op::Snapshot, failed, Some(&list)));
        }
        let taken = ret
            .get_nvlist("taken")
            .ok_or_else(|| broken("no snapshots in the result"))?;
        let mut v = Vec::new();
        for (name, props) in taken.iter() {
            let props = props
                .as_nvlist()
                .ok_or_else(|| broken("a snapshot without properties"))?;
            v.push(snapshot_info(name, props)?);
        }
        v.sort_by_key(|t| snaps.iter().position(|s| *s == t.name));
        Ok(v)
    }
}

/// A program stopped by its memory or instruction limit, or whose result did not fit
/// the output buffer.
pub(crate) fn over_limits(e: &Error) -> bool {
    let Error::Zfs(z) = e else { return false };
    use crate::error::Errno;
    let said_limit = z.items().iter().any(|i| i.name.contains("limit"));
    [Errno(libc::ENOSPC), Errno(libc::ENOMEM), Errno::ETIME].contains(&z.errno())
        || (z.errno() == Errno::ECHRNG && said_limit)
}

/// A channel program's error as the error of `op` on `root`.
pub(crate) fn relabel(e: Error, op: Op, root: &DatasetName) -> Error {
    match e {
        Error::Zfs(mut z) => {
            z.relabel(op, root.to_string());
            Error::Zfs(z)
        }
        other => other,
    }
}

fn num(p: &NvListRef, k: &str) -> u64 {
    match p.get(k) {
        // Channel programs return Lua integers (int64): a uint64 above i64::MAX comes
        // back negative, and the cast restores its bits.
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_i64().map(|x| x as u64))
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0),
        None => 0,
    }
}

fn text(p: &NvListRef, k: &str) -> Option<String> {
    p.get_str(k)
        .filter(|s| !s.is_empty() && *s != "-")
        .map(str::to_owned)
}

fn dataset_info(name: &str, p: &NvListRef) -> Result<DatasetInfo> {
    let kind = match p.get_str("type") {
        Some("volume") => Kind::Volume,
        _ => Kind::Filesystem,
    };
    // Channel programs give some index properties as numbers (their enum values).
    let encryption = text(p, "encryption")
        .or_else(|| {
            p.get("encryption").and_then(|v| v.as_i64()).map(|n| {
                const NAMES: [&str; 9] = [
                    "inherit",
                    "on",
                    "off",
                    "aes-128-ccm",
                    "aes-192-ccm",
                    "aes-256-ccm",
                    "aes-128-gcm",
                    "aes-192-gcm",
                    "aes-256-gcm",
                ];
                NAMES.get(n as usize).unwrap_or(&"on").to_string()
            })
        })
        .unwrap_or_else(|| "off".into());
    // zfs.get_prop in a channel program reports `encryption` as "off" even on an
    // encrypted dataset (OpenZFS 2.3); `keystatus` is right, so trust it.
    let key_status = text(p, "keystatus").or_else(|| {
        p.get("keystatus").and_then(|v| v.as_i64()).map(|n| {
            match n {
                1 => "unavailable",
                2 => "available",
                _ => "none",
            }
            .to_string()
        })
    });
    let encrypted =
        encryption != "off" || matches!(key_status.as_deref(), Some("available" | "unavailable"));
    let encryption = if encrypted && encryption == "off" {
        "on".to_string()
    } else {
        encryption
    };
    Ok(DatasetInfo {
        name: DatasetName::new(name)?,
        kind,
        guid: num(p, "guid"),
        createtxg: num(p, "createtxg"),
        creation: num(p, "creation"),
        used: num(p, "used"),
        referenced: num(p, "referenced"),
        available: num(p, "available"),
        written: num(p, "written"),
        receive_resume_token: text(p, "receive_resume_token"),
        encryption_root: text(p, "encryptionroot").filter(|_| encrypted),
        key_status: key_status.filter(|_| encrypted),
        encryption,
        origin: text(p, "origin"),
        user: p
            .get_nvlist("@user")
            .map(|u| {
                u.iter()
                    .filter_map(|(name, v)| {
                        let v = v.as_nvlist()?;
                        Some(UserProperty {
                            name: name.to_owned(),
                            value: v.get_str("value")?.to_owned(),
                            setpoint: v.get_str("setpoint").unwrap_or("").to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) fn snapshot_info(name: &str, p: &NvListRef) -> Result<SnapshotInfo> {
    Ok(SnapshotInfo {
        name: SnapshotName::new(name)?,
        guid: num(p, "guid"),
        createtxg: num(p, "createtxg"),
        creation: num(p, "creation"),
        used: num(p, "used"),
        referenced: num(p, "referenced"),
        written: num(p, "written"),
        userrefs: num(p, "userrefs"),
        holds: p.contains("userrefs").then(|| {
            p.get_nvlist("holds")
                .map(|h| h.iter().map(|(tag, _)| tag.to_string()).collect())
                .unwrap_or_default()
        }),
    })
}
