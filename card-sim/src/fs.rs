//! The virtual card's file tree: an MF (`3F00`), dedicated files (by FID and/or DF name
//! (AID)) and transparent elementary files (FID, optional SFI, contents).
//!
//! Build trees with the `with_*` builders:
//!
//! ```
//! use card_sim::{Df, Ef, FileSystem};
//! let fs = FileSystem::new(
//!     Df::mf()
//!         .with_ef(Ef::new(0x2F01, vec![1, 2, 3]))
//!         .with_df(Df::new().with_fid(0x5000).with_ef(Ef::new(0x5001, vec![0; 10]).with_sfi(1))),
//! );
//! assert_eq!(fs.mf().children().len(), 2);
//! ```

/// File identifier of the master file.
pub const MF_FID: u16 = 0x3F00;

/// Who may read an EF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// Anyone, in clear or under secure messaging.
    #[default]
    Always,
    /// Only under secure messaging after the IAS device authentication (DAPP); else `6982`.
    /// (Like EF.Cert_CIE `1003` on a real CIE.) On a card without the IAS application the
    /// file cannot be read at all.
    SecureAfterDapp,
    /// Only under the eMRTD application's secure messaging after BAC or PACE (the LDS1
    /// files); else `6982`.
    AfterEmrtdAccessControl,
}

/// A transparent elementary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ef {
    fid: u16,
    sfi: Option<u8>,
    data: Vec<u8>,
    read: Access,
}

impl Ef {
    /// A transparent EF with the given file identifier and contents.
    pub fn new(fid: u16, data: Vec<u8>) -> Self {
        Self {
            fid,
            sfi: None,
            data,
            read: Access::Always,
        }
    }

    /// Restrict reading.
    pub fn with_read_access(mut self, access: Access) -> Self {
        self.read = access;
        self
    }

    /// Who may read the file.
    pub fn read_access(&self) -> Access {
        self.read
    }

    /// Give the EF a short file identifier (1..=30; only bits 1-5 are kept).
    pub fn with_sfi(mut self, sfi: u8) -> Self {
        self.sfi = Some(sfi & 0x1F);
        self
    }

    /// File identifier.
    pub fn fid(&self) -> u16 {
        self.fid
    }

    /// Short file identifier, if any.
    pub fn sfi(&self) -> Option<u8> {
        self.sfi
    }

    /// Current contents.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

/// A dedicated file (directory or application), selectable by FID, by DF name, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Df {
    fid: Option<u16>,
    name: Option<Vec<u8>>,
    children: Vec<Node>,
}

/// A child of a DF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A dedicated file.
    Df(Df),
    /// A transparent elementary file.
    Ef(Ef),
}

impl Node {
    /// The node's file identifier, if it has one.
    pub fn fid(&self) -> Option<u16> {
        match self {
            Node::Df(df) => df.fid,
            Node::Ef(ef) => Some(ef.fid),
        }
    }
}

impl Df {
    /// An empty DF with neither FID nor name.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty MF (`3F00`).
    pub fn mf() -> Self {
        Self::new().with_fid(MF_FID)
    }

    /// An application DF selectable by its AID (DF name).
    pub fn application(aid: &[u8]) -> Self {
        Self::new().with_name(aid)
    }

    /// Set the file identifier.
    pub fn with_fid(mut self, fid: u16) -> Self {
        self.fid = Some(fid);
        self
    }

    /// Set the DF name (AID).
    pub fn with_name(mut self, name: &[u8]) -> Self {
        self.name = Some(name.to_vec());
        self
    }

    /// Add an EF child.
    pub fn with_ef(mut self, ef: Ef) -> Self {
        self.children.push(Node::Ef(ef));
        self
    }

    /// Add a DF child.
    pub fn with_df(mut self, df: Df) -> Self {
        self.children.push(Node::Df(df));
        self
    }

    /// File identifier, if any.
    pub fn fid(&self) -> Option<u16> {
        self.fid
    }

    /// DF name (AID), if any.
    pub fn name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }

    /// Children in insertion order.
    pub fn children(&self) -> &[Node] {
        &self.children
    }

    pub(crate) fn child_by_fid(&self, fid: u16) -> Option<usize> {
        self.children.iter().position(|c| c.fid() == Some(fid))
    }

    pub(crate) fn child_df(&self, fid: u16) -> Option<usize> {
        self.children
            .iter()
            .position(|c| matches!(c, Node::Df(d) if d.fid == Some(fid)))
    }

    pub(crate) fn child_ef(&self, fid: u16) -> Option<usize> {
        self.children
            .iter()
            .position(|c| matches!(c, Node::Ef(e) if e.fid == fid))
    }

    pub(crate) fn ef_by_sfi(&self, sfi: u8) -> Option<usize> {
        self.children
            .iter()
            .position(|c| matches!(c, Node::Ef(e) if e.sfi == Some(sfi)))
    }

    pub(crate) fn ef(&self, index: usize) -> Option<&Ef> {
        match self.children.get(index) {
            Some(Node::Ef(ef)) => Some(ef),
            _ => None,
        }
    }

    pub(crate) fn ef_mut(&mut self, index: usize) -> Option<&mut Ef> {
        match self.children.get_mut(index) {
            Some(Node::Ef(ef)) => Some(ef),
            _ => None,
        }
    }
}

/// A whole card file system. DFs are addressed internally by their path of child indices
/// from the MF (the MF itself is the empty path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSystem {
    mf: Df,
}

impl FileSystem {
    /// A file system rooted at `mf`; its FID is forced to `3F00`.
    pub fn new(mf: Df) -> Self {
        Self {
            mf: mf.with_fid(MF_FID),
        }
    }

    /// The master file.
    pub fn mf(&self) -> &Df {
        &self.mf
    }

    /// The DF at `path` (child indices from the MF).
    pub(crate) fn df(&self, path: &[usize]) -> Option<&Df> {
        path.iter()
            .try_fold(&self.mf, |df, &i| match df.children.get(i) {
                Some(Node::Df(child)) => Some(child),
                _ => None,
            })
    }

    pub(crate) fn df_mut(&mut self, path: &[usize]) -> Option<&mut Df> {
        path.iter()
            .try_fold(&mut self.mf, |df, &i| match df.children.get_mut(i) {
                Some(Node::Df(child)) => Some(child),
                _ => None,
            })
    }

    /// Path of the first DF (depth-first, MF included) whose name equals `name`.
    pub(crate) fn find_df_by_name(&self, name: &[u8]) -> Option<Vec<usize>> {
        fn walk(df: &Df, name: &[u8], path: &mut Vec<usize>) -> bool {
            if df.name.as_deref() == Some(name) {
                return true;
            }
            for (i, child) in df.children.iter().enumerate() {
                if let Node::Df(child) = child {
                    path.push(i);
                    if walk(child, name, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            false
        }
        let mut path = Vec::new();
        walk(&self.mf, name, &mut path).then_some(path)
    }
}
