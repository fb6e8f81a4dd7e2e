//! Image operations and their rules: the four categories as seen by a caller, regional
//! visibility, quota, sharing limits, what a share recipient may do, the state machine, and
//! deletion rules. Every check for these rules lives here.

use crate::{ids, Caller, Error, ErrorKind, Operation, Result, Service, TextField};
use ikon_catalog::{Category, DeleteOutcome, Image, ImageQuery, NewImage};

/// How the caller sees an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The caller's own custom image.
    Private,
    /// Another account's custom image shared to the caller.
    Shared,
    /// A platform image.
    Public,
    /// A marketplace image.
    Market,
}

/// An image and how the caller sees it.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// The image.
    pub image: Image,
    /// Its category for this caller.
    pub visibility: Visibility,
}

/// A listing request (already parsed by the dialect).
#[derive(Debug, Clone, Default)]
pub struct ListImages {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only these categories (None = all).
    pub categories: Option<Vec<Visibility>>,
    /// Name contains one of.
    pub names: Vec<String>,
    /// Platform contains one of.
    pub platforms: Vec<String>,
    /// Tag key is one of.
    pub tag_keys: Vec<String>,
    /// Tag value is one of.
    pub tag_values: Vec<String>,
    /// Tag `key` has one of the values.
    pub tags: Vec<(String, Vec<String>)>,
    /// State is one of.
    pub states: Option<Vec<String>>,
    /// Family equals.
    pub family: Option<String>,
    /// Leave deprecated images out.
    pub exclude_deprecated: bool,
    /// Page start.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

/// One page of images.
#[derive(Debug, Clone)]
pub struct ImageListing {
    /// All matches.
    pub total: u64,
    /// This page.
    pub images: Vec<ImageView>,
}

/// Share or unshare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareChange {
    /// Grant.
    Share,
    /// Withdraw.
    Cancel,
}

/// A combined change of an image's share list: withdrawals first, then grants.
#[derive(Debug, Clone, Default)]
pub struct ShareUpdate {
    /// Accounts to grant.
    pub add: Vec<String>,
    /// Accounts to withdraw.
    pub remove: Vec<String>,
    /// Only check.
    pub dry_run: bool,
}

/// A deletion request.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// Images to delete (all or nothing is checked first).
    pub ids: Vec<String>,
    /// Only check.
    pub dry_run: bool,
    /// Also delete the snapshots made for the images (Tencent's `DeleteBindedSnap`).
    pub delete_snapshots: bool,
}

/// Image states.
pub mod state {
    /// Being made from an instance or snapshots.
    pub const CREATING: &str = "CREATING";
    /// Usable.
    pub const NORMAL: &str = "NORMAL";
    /// Making it failed.
    pub const CREATEFAILED: &str = "CREATEFAILED";
    /// Being copied to another region.
    pub const SYNCING: &str = "SYNCING";
    /// Being imported.
    pub const IMPORTING: &str = "IMPORTING";
    /// Import failed.
    pub const IMPORTFAILED: &str = "IMPORTFAILED";

    /// States an image may be deleted in.
    pub const DELETABLE: &[&str] = &[NORMAL, CREATEFAILED, IMPORTFAILED];

    /// The legal transitions: (from, to).
    pub const TRANSITIONS: &[(&str, &str)] = &[
        (CREATING, NORMAL),
        (CREATING, CREATEFAILED),
        (IMPORTING, NORMAL),
        (IMPORTING, IMPORTFAILED),
        (NORMAL, SYNCING),
        (SYNCING, NORMAL),
    ];

    /// States `to` may be reached from.
    pub fn sources(to: &str) -> Vec<&'static str> {
        TRANSITIONS
            .iter()
            .filter(|(_, t)| *t == to)
            .map(|(f, _)| *f)
            .collect()
    }
}

fn category(v: Visibility) -> Category {
    match v {
        Visibility::Private => Category::Private,
        Visibility::Shared => Category::Shared,
        Visibility::Public => Category::Public,
        Visibility::Market => Category::Market,
    }
}

/// The system-disk entry of an image whose disk was just stored as manifest `m` (`size`
/// guest bytes), with a fresh snapshot id.
pub(crate) fn system_disk(m: &ikon_store::ManifestRef, size: u64) -> ikon_catalog::DiskRef {
    ikon_catalog::DiskRef {
        disk_id: m.disk_id.clone(),
        version: m.version,
        usage: "SYSTEM_DISK".into(),
        size_bytes: size,
        snapshot_id: ids::new_id("snap"),
    }
}

/// Checks `text` against the policy's rule for `field`.
pub(crate) fn check_text(
    rule: &crate::policy::TextRule,
    field: TextField,
    text: &str,
) -> Result<()> {
    let what = match field {
        TextField::ImageName => "image name",
        TextField::Description => "image description",
        TextField::Family => "image family",
        TextField::InstanceName => "instance name",
        TextField::SnapshotName => "snapshot name",
    };
    rule.check(text).map_err(|(problem, rule)| {
        let kind = match problem {
            crate::policy::TextProblem::TooLong => ErrorKind::TextTooLong(field),
            crate::policy::TextProblem::Malformed => ErrorKind::TextMalformed(field),
        };
        Error::new(kind, format!("the {what} must be {rule}"))
    })
}

fn check_id(id: &str) -> Result<()> {
    if ids::is_well_formed("img", id) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::ImageIdMalformed,
            format!("{id:?} is not an image id (img- followed by 8 lower-case letters or digits)"),
        ))
    }
}

impl Service {
    /// How `caller` sees `img`, or None when it is invisible to them.
    async fn visibility(&self, caller: &Caller, img: &Image) -> Result<Option<Visibility>> {
        Ok(match img.kind.as_str() {
            "PUBLIC" => Some(Visibility::Public),
            "MARKET" if img.region == caller.region => Some(Visibility::Market),
            "PRIVATE" if img.region == caller.region => {
                if img.owner == caller.account_id {
                    Some(Visibility::Private)
                } else if self
                    .catalog()
                    .shares(&img.image_id)
                    .await?
                    .iter()
                    .any(|s| s.account_id == caller.account_id)
                {
                    Some(Visibility::Shared)
                } else {
                    None
                }
            }
            _ => None,
        })
    }

    /// An image the caller may change: their own custom image, or any platform image for
    /// the platform administrator.
    pub(crate) async fn owned_image(&self, caller: &Caller, image_id: &str) -> Result<ImageView> {
        let v = self.images().visible_image(caller, image_id).await?;
        match v.visibility {
            Visibility::Private => Ok(v),
            Visibility::Public | Visibility::Market if caller.is_admin => Ok(v),
            Visibility::Shared => Err(Error::new(
                ErrorKind::SharedImageReadOnly,
                format!(
                    "image {image_id} is shared to you: it can only be used to create instances"
                ),
            )),
            Visibility::Public | Visibility::Market => Err(Error::new(
                ErrorKind::NotOwner,
                format!("image {image_id} does not belong to your account"),
            )),
        }
    }

    /// [`Service::delete_images`] as part of another operation (not counted on its own).
    pub(crate) async fn remove_images(&self, caller: &Caller, req: &DeleteRequest) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for id in &req.ids {
            check_id(id)?;
            if !seen.insert(id.as_str()) {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("image {id} is listed twice"),
                ));
            }
        }
        for id in &req.ids {
            let v = self.owned_image(caller, id).await?;
            check_deletable(&v.image)?;
        }
        if req.dry_run {
            return Ok(());
        }
        for id in &req.ids {
            match self.catalog().delete_image(id, state::DELETABLE).await? {
                DeleteOutcome::Deleted => {
                    if req.delete_snapshots {
                        self.catalog().delete_image_snapshots(id).await?;
                    }
                }
                DeleteOutcome::NotFound => {}
                DeleteOutcome::Shared => return Err(in_shared(id)),
                DeleteOutcome::BadState => {
                    return Err(Error::new(
                        ErrorKind::ImageIncorrectState,
                        format!("image {id} changed state and cannot be deleted now"),
                    ))
                }
            }
        }
        Ok(())
    }
}

fn share_quota(max: i64) -> Error {
    Error::new(
        ErrorKind::ShareQuotaExceeded,
        format!("an image can be shared to at most {max} accounts"),
    )
}

fn in_shared(id: &str) -> Error {
    Error::new(
        ErrorKind::ImageInShared,
        format!("image {id} is shared to other accounts; cancel the sharing before deleting it"),
    )
}

fn check_deletable(img: &Image) -> Result<()> {
    if !state::DELETABLE.contains(&img.state.as_str()) {
        return Err(Error::new(
            ErrorKind::ImageIncorrectState,
            format!(
                "image {} is {} and cannot be deleted now",
                img.image_id, img.state
            ),
        ));
    }
    if img.share_count > 0 {
        return Err(in_shared(&img.image_id));
    }
    Ok(())
}

impl crate::facets::Images<'_> {
    /// Checks an image name against the policy.
    pub fn check_name(&self, name: &str) -> Result<()> {
        check_text(&self.config().names.image_name, TextField::ImageName, name)
    }

    /// Checks an image description against the policy.
    pub fn check_description(&self, d: &str) -> Result<()> {
        check_text(&self.config().names.description, TextField::Description, d)
    }

    /// Checks what a request gives a new image: its name, and its description and family
    /// when given.
    pub fn check_new_image(&self, name: &str, description: &str, family: &str) -> Result<()> {
        self.check_name(name)?;
        if !description.is_empty() {
            self.check_description(description)?;
        }
        if !family.is_empty() {
            self.check_family(family)?;
        }
        Ok(())
    }

    /// Checks an image family against the policy.
    pub fn check_family(&self, f: &str) -> Result<()> {
        check_text(&self.config().names.family, TextField::Family, f)
    }

    /// An image visible to `caller`; invisible and absent images are both "not found".
    pub async fn visible_image(&self, caller: &Caller, image_id: &str) -> Result<ImageView> {
        check_id(image_id)?;
        self.check_region(&caller.region)?;
        let img = self
            .catalog()
            .image(image_id)
            .await?
            .ok_or_else(|| Error::image_not_found(image_id))?;
        match self.visibility(caller, &img).await? {
            Some(visibility) => Ok(ImageView {
                image: img,
                visibility,
            }),
            None => Err(Error::image_not_found(image_id)),
        }
    }

    /// Lists images visible to the caller in their region.
    pub async fn list_images(&self, caller: &Caller, req: &ListImages) -> Result<ImageListing> {
        self.check_region(&caller.region)?;
        if let Some(ids) = &req.ids {
            for id in ids {
                check_id(id)?;
            }
        }
        let cats = req.categories.clone().unwrap_or_else(|| {
            vec![
                Visibility::Private,
                Visibility::Shared,
                Visibility::Public,
                Visibility::Market,
            ]
        });
        let q = ImageQuery {
            viewer: caller.account_id.clone(),
            region: caller.region.clone(),
            categories: cats.iter().copied().map(category).collect(),
            ids: req.ids.clone(),
            names: req.names.clone(),
            platforms: req.platforms.clone(),
            tag_keys: req.tag_keys.clone(),
            tag_values: req.tag_values.clone(),
            tags: req.tags.clone(),
            family: req.family.clone(),
            states: req.states.clone(),
            exclude_deprecated: req.exclude_deprecated,
            offset: i64::try_from(req.offset).unwrap_or(i64::MAX),
            limit: i64::try_from(req.limit).unwrap_or(i64::MAX),
        };
        let (total, images) = self.catalog().query_images(&q).await?;
        let mut out = Vec::with_capacity(images.len());
        for img in images {
            // The query already applied visibility; classify each row for the caller.
            let visibility = match img.kind.as_str() {
                "PUBLIC" => Visibility::Public,
                "MARKET" => Visibility::Market,
                _ if img.owner == caller.account_id => Visibility::Private,
                _ => Visibility::Shared,
            };
            out.push(ImageView {
                image: img,
                visibility,
            });
        }
        Ok(ImageListing {
            total: u64::try_from(total).unwrap_or(0),
            images: out,
        })
    }

    /// Checks that `caller` may rename / re-describe an image now (everything
    /// [`Service::modify_image`] checks before writing; a duplicate name is only found then).
    pub async fn check_modify_image(
        &self,
        caller: &Caller,
        image_id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        if let Some(n) = name {
            self.check_name(n)?;
        }
        if let Some(d) = description {
            self.check_description(d)?;
        }
        let v = self.owned_image(caller, image_id).await?;
        if [state::CREATING, state::SYNCING, state::IMPORTING].contains(&v.image.state.as_str()) {
            return Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!(
                    "image {image_id} is {} and cannot be modified now",
                    v.image.state
                ),
            ));
        }
        Ok(())
    }

    /// Renames / re-describes an image.
    pub async fn modify_image(
        &self,
        caller: &Caller,
        image_id: &str,
        name: Option<&str>,
        description: Option<&str>,
        family: Option<&str>,
        deprecated: Option<bool>,
    ) -> Result<()> {
        self.count_limited(caller, Operation::ModifyImageAttribute)
            .await?;
        self.check_modify_image(caller, image_id, name, description)
            .await?;
        if let Some(f) = family.filter(|f| !f.is_empty()) {
            self.check_family(f)?;
        }
        match self
            .catalog()
            .update_image_attributes(image_id, name, description, family, deprecated, ids::now())
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::image_not_found(image_id)),
            Err(ikon_catalog::Error::Conflict(_)) => Err(Error::new(
                ErrorKind::NameDuplicate,
                format!(
                    "an image named {:?} already exists",
                    name.unwrap_or_default()
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes images: every one is checked first (visible, owned, deletable state, not
    /// shared); nothing is deleted if any check fails, and nothing at all on a dry run.
    pub async fn delete_images(&self, caller: &Caller, req: &DeleteRequest) -> Result<()> {
        if !req.dry_run {
            self.count_limited(caller, Operation::DeleteImages).await?;
        }
        self.remove_images(caller, req).await
    }

    /// Shares an image to accounts or withdraws shares. Only the owner may do it, only for
    /// NORMAL images, only to existing other accounts (who see it in the image's region),
    /// and never to more than the configured number of accounts.
    pub async fn change_shares(
        &self,
        caller: &Caller,
        image_id: &str,
        accounts: &[String],
        change: ShareChange,
    ) -> Result<()> {
        let mut u = ShareUpdate::default();
        match change {
            ShareChange::Share => u.add = accounts.to_vec(),
            ShareChange::Cancel => u.remove = accounts.to_vec(),
        }
        self.update_shares(caller, image_id, &u).await
    }

    /// Withdraws `u.remove` then grants `u.add` in one call, under the rules of
    /// [`Service::change_shares`]; every check (including the account limit, counted after
    /// the withdrawals) runs before anything changes, and nothing changes on a dry run.
    pub async fn update_shares(
        &self,
        caller: &Caller,
        image_id: &str,
        u: &ShareUpdate,
    ) -> Result<()> {
        if !u.dry_run {
            self.count_limited(caller, Operation::ModifyImageSharePermission)
                .await?;
        }
        if u.add.is_empty() && u.remove.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "no account ids given",
            ));
        }
        let v = self.owned_image(caller, image_id).await?;
        if v.visibility != Visibility::Private {
            return Err(Error::new(
                ErrorKind::NotOwner,
                format!("image {image_id} is not a custom image of your account"),
            ));
        }
        let sorted = |l: &[String]| {
            let mut l = l.to_vec();
            l.sort();
            l.dedup();
            l
        };
        let (add, remove) = (sorted(&u.add), sorted(&u.remove));
        let existing: Vec<String> = self
            .catalog()
            .shares(image_id)
            .await?
            .into_iter()
            .map(|s| s.account_id)
            .filter(|a| !remove.contains(a))
            .collect();
        let max = self.config().limits.share_accounts_max;
        if !add.is_empty() {
            if v.image.state != state::NORMAL {
                return Err(Error::new(
                    ErrorKind::ImageIncorrectState,
                    format!(
                        "image {image_id} is {}; only NORMAL images can be shared",
                        v.image.state
                    ),
                ));
            }
            if v.image.license_type == "BYOL" {
                return Err(Error::new(
                    ErrorKind::ByolShare,
                    format!(
                        "image {image_id} is BYOL (bring your own licence) and cannot be shared"
                    ),
                ));
            }
            for a in &add {
                if *a == caller.account_id {
                    return Err(Error::new(
                        ErrorKind::ShareToSelf,
                        "an image cannot be shared to its own account",
                    ));
                }
                if self.catalog().account(a).await?.is_none() {
                    return Err(Error::new(
                        ErrorKind::AccountNotFound,
                        format!("account {a} does not exist"),
                    ));
                }
                if existing.contains(a) {
                    return Err(Error::new(
                        ErrorKind::ShareExists,
                        format!("image {image_id} is already shared to account {a}"),
                    ));
                }
            }
            let after = i64::try_from(existing.len() + add.len()).unwrap_or(i64::MAX);
            if after > max {
                return Err(share_quota(max));
            }
        }
        if u.dry_run {
            return Ok(());
        }
        if !remove.is_empty() {
            self.catalog().unshare_image(image_id, &remove).await?;
        }
        if add.is_empty() {
            return Ok(());
        }
        match self
            .catalog()
            .share_image(image_id, &add, max, ids::now())
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(share_quota(max)),
            Err(ikon_catalog::Error::Conflict(m)) => Err(Error::new(ErrorKind::ShareExists, m)),
            Err(e) => Err(e.into()),
        }
    }

    /// The accounts an image is shared to (owner only).
    pub async fn shares(
        &self,
        caller: &Caller,
        image_id: &str,
    ) -> Result<Vec<ikon_catalog::Share>> {
        let v = self.owned_image(caller, image_id).await?;
        Ok(self.catalog().shares(&v.image.image_id).await?)
    }

    /// The caller's custom-image quota in their region (total, used).
    pub async fn image_quota(&self, caller: &Caller) -> Result<(i64, i64)> {
        self.check_region(&caller.region)?;
        let used = self
            .catalog()
            .quota_used(&caller.account_id, &caller.region)
            .await?;
        Ok((self.config().limits.custom_images_per_region, used))
    }

    /// The configured instance types `image_id` (visible to the caller) can run on: those
    /// of its architecture (`i386` runs on `x86_64`), and for Windows at least 1 GiB of memory.
    pub async fn instance_types_for_image(
        &self,
        caller: &Caller,
        image_id: &str,
    ) -> Result<Vec<crate::config::InstanceType>> {
        let v = self.visible_image(caller, image_id).await?;
        let arch = match v.image.architecture.as_str() {
            "arm" | "arm64" | "aarch64" => "arm64",
            _ => "x86_64",
        };
        let windows = v.image.os_type.eq_ignore_ascii_case("windows");
        Ok(self
            .config()
            .instance_types
            .iter()
            .filter(|t| t.architecture == arch && (!windows || t.memory_mib >= 1024))
            .cloned()
            .collect())
    }

    /// The newest usable (NORMAL, not deprecated) image of a family visible to the caller.
    pub async fn image_from_family(
        &self,
        caller: &Caller,
        family: &str,
    ) -> Result<Option<ImageView>> {
        self.check_region(&caller.region)?;
        if family.is_empty() {
            return Ok(None);
        }
        let q = ImageQuery {
            viewer: caller.account_id.clone(),
            region: caller.region.clone(),
            categories: vec![
                Category::Private,
                Category::Shared,
                Category::Public,
                Category::Market,
            ],
            family: Some(family.to_string()),
            states: Some(vec![state::NORMAL.to_string()]),
            exclude_deprecated: true,
            offset: 0,
            limit: 1,
            ..ImageQuery::default()
        };
        let (_, images) = self.catalog().query_images(&q).await?;
        let Some(img) = images.into_iter().next() else {
            return Ok(None);
        };
        let visibility = self
            .visibility(caller, &img)
            .await?
            .ok_or_else(|| Error::internal("family query returned an invisible image"))?;
        Ok(Some(ImageView {
            image: img,
            visibility,
        }))
    }

    /// Checks a new image's stored fields against the policy; returns the quota it counts
    /// against (custom images only).
    fn admit_new(&self, img: &NewImage) -> Result<Option<i64>> {
        self.check_name(&img.name)?;
        // A stored description may have come from elsewhere (a copied or published image):
        // only its length is held to the policy here; changes are checked in full.
        let max = self.config().names.description.max;
        if img.description.chars().count() > max {
            return Err(Error::new(
                ErrorKind::TextTooLong(TextField::Description),
                format!("the image description must be at most {max} characters"),
            ));
        }
        self.check_region(&img.region)?;
        Ok(
            (crate::ImageKind::of(&img.kind) == crate::ImageKind::Private)
                .then_some(self.config().limits.custom_images_per_region),
        )
    }

    fn quota_full(&self, img: &NewImage) -> Error {
        Error::new(
            ErrorKind::ImageQuotaExceeded,
            format!(
                "custom image quota reached: at most {} custom images per account in region {}",
                self.config().limits.custom_images_per_region,
                img.region
            ),
        )
    }

    /// Stores a new image, reserving a unit of its owner's quota when it is a custom image.
    pub async fn add_image(&self, img: &NewImage) -> Result<()> {
        let quota = self.admit_new(img)?;
        match self.catalog().insert_image(img, quota).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.quota_full(img)),
            Err(ikon_catalog::Error::Conflict(_)) => Err(name_taken(img)),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores new images and the task that will finish them in one write (see
    /// `Catalog::insert_images_with_task`): all of them, or none with the first refusal.
    pub(crate) async fn add_images_with_task(
        &self,
        imgs: &[NewImage],
        task: &ikon_catalog::NewTask,
        start: ikon_catalog::TaskStart<'_>,
    ) -> Result<()> {
        let mut rows = Vec::with_capacity(imgs.len());
        for img in imgs {
            rows.push((img, self.admit_new(img)?));
        }
        let done = self
            .catalog()
            .insert_images_with_task(&rows, task, start, ids::now())
            .await?;
        match done {
            ikon_catalog::Inserted::All => Ok(()),
            ikon_catalog::Inserted::QuotaFull(i) => Err(self.quota_full(&imgs[i])),
            ikon_catalog::Inserted::NameTaken(i) => Err(name_taken(&imgs[i])),
        }
    }

    /// Moves an image along a legal transition of the state machine.
    pub async fn transition_image(&self, image_id: &str, to: &str, reason: &str) -> Result<()> {
        let from = state::sources(to);
        if from.is_empty() {
            return Err(Error::internal(format!("no transition leads to {to}")));
        }
        if self
            .catalog()
            .transition_image(image_id, &from, to, reason, None, ids::now())
            .await?
        {
            Ok(())
        } else {
            let cur = self.catalog().image(image_id).await?;
            Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!(
                    "image {image_id} cannot become {to} from {}",
                    cur.map(|i| i.state).unwrap_or_else(|| "nothing".into())
                ),
            ))
        }
    }
}

/// The refusal of a new image whose name is taken in its owner's region.
fn name_taken(img: &NewImage) -> Error {
    Error::new(
        ErrorKind::NameDuplicate,
        format!("an image named {:?} already exists", img.name),
    )
}
