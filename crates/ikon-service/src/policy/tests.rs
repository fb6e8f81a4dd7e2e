//! Tests of the policy documents and their merging.

use super::*;

#[test]
fn presets_validate_and_differ_where_the_clouds_do() {
    for name in PRESETS {
        let c = Config::preset(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(c.validate(), Ok(()), "{name}");
        assert_eq!((c.preset.as_str(), c.rules.as_str()), (*name, *name));
    }
    assert!(Config::preset("aws").is_none());
    let (t, a) = (Config::tencent(), Config::alibaba());
    assert_eq!(Config::default(), t);
    assert!(t.region("ap-guangzhou").is_some() && t.region("cn-hangzhou").is_none());
    for r in [
        "cn-hangzhou",
        "cn-shanghai",
        "cn-beijing",
        "cn-shenzhen",
        "cn-hongkong",
    ] {
        assert!(a.region(r).is_some(), "{r}");
    }
    for r in ["ap-southeast-1", "us-west-1"] {
        assert!(a.region(r).is_some(), "{r}");
    }
    let hz = a
        .region("cn-hangzhou")
        .map(|r| r.zones.clone())
        .unwrap_or_default();
    assert!(hz.iter().any(|z| z.name == "cn-hangzhou-h"));
    assert!(a.region("ap-guangzhou").is_none());
    assert_eq!(a.import.native_formats, ["raw", "vhd"]);
    assert_eq!(a.pricing.license_regions, ["us-west-1", "us-east-1"]);
    assert!(a
        .pricing
        .license_regions
        .iter()
        .all(|r| a.region(r).is_some()));
    assert!(a.import.formats.contains(&"qcow2".to_string()));
    assert_eq!((t.import.max_data_disks, a.import.max_data_disks), (0, 16));
    let g = a.guest_rules();
    assert_eq!((g.name.as_str(), g.formats_converted), ("alibaba", true));
    assert_eq!(g.formats, ["raw", "vhd"]);
    assert_eq!(g.max_virtual_size, 500 << 30);
    let g = t.guest_rules();
    assert_eq!((g.name.as_str(), g.formats_converted), ("tencent", false));
    assert_eq!(g.max_virtual_size, 50 << 30);
}

#[test]
fn files_override_their_preset_key_by_key() {
    let ok = |text: &str, preset: Option<&str>| {
        Config::from_toml(text, preset).unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    assert_eq!(ok("", None), Config::tencent());
    assert_eq!(ok("", Some("alibaba")), Config::alibaba());
    let c = ok(
        "preset = \"alibaba\"\n[limits]\nshare_accounts_max = 2\n[import]\nmax_data_disks = 4\n",
        None,
    );
    assert_eq!(c.preset, "alibaba");
    assert_eq!(c.limits.share_accounts_max, 2);
    // Keys the file leaves out keep the preset's values.
    assert_eq!(c.limits.custom_images_per_region, 100);
    assert_eq!(c.import.max_data_disks, 4);
    assert_eq!(c.import.max_system_disk_gib, 500);
    assert_eq!(c.regions, Config::alibaba().regions);
    // The command line wins over the file.
    let c = ok("preset = \"alibaba\"\n", Some("tencent"));
    assert_eq!(c, Config::tencent());
    // Lists replace.
    let c = ok(
        "preset = \"alibaba\"\n[[regions]]\nname = \"cn-qingdao\"\nzones = [{ name = \"cn-qingdao-b\" }]\n",
        None,
    );
    assert_eq!(c.regions.len(), 1);
    assert_eq!(c.rules, "alibaba");
    for bad in [
        "preset = \"aws\"",
        "preset = 3",
        "[import]\nnative_formats = [\"vdi\"]",
        "[import]\nmax_system_disk_gib = 0",
        "[limits]\nno_such_limit = 1",
        "rules = \"gcp\"",
        "[limits]\ndaily_limited_actions = [\"DescribeImages\"]",
        "[names]\nimage_name = { min = 5, max = 4 }",
        "[instances]\ndefault_instance_type = \"X1.HUGE\"",
    ] {
        assert!(Config::from_toml(bad, None).is_err(), "{bad}");
    }
    assert!(Config::from_toml("", Some("aws")).is_err());
}

#[test]
fn offline_and_service_rules_agree_on_disk_size() {
    // One document per preset: the guest checks and the import limits come from it.
    let (t, a) = (Config::tencent(), Config::alibaba());
    assert_eq!(t.guest_rules().max_virtual_size, 50 << 30);
    assert_eq!(a.guest_rules().max_virtual_size, 500 << 30);
    // An operator's override reaches the guest checks too.
    let c = Config::from_toml("[import]\nmax_system_disk_gib = 80\n", Some("tencent"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.guest_rules().max_virtual_size, 80 << 30);
    // `rules` names the preset whose [guest] section applies; the file's keys still win.
    let c = Config::from_toml("rules = \"alibaba\"\n[guest]\nmax_nics = 3\n", None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.rules.as_str(), c.guest.max_nics), ("alibaba", 3));
    assert_eq!(c.guest.linux_distros, a.guest.linux_distros);
}

#[test]
fn names_follow_the_preset() {
    let (t, a) = (Config::tencent(), Config::alibaba());
    let long = |n: usize| "n".repeat(n);
    assert!(t.names.image_name.check(&long(60)).is_ok());
    assert_eq!(
        t.names.image_name.check(&long(61)).map_err(|e| e.0),
        Err(TextProblem::TooLong)
    );
    assert!(a.names.image_name.check(&long(128)).is_ok());
    assert_eq!(
        a.names.image_name.check(&long(129)).map_err(|e| e.0),
        Err(TextProblem::TooLong)
    );
    for bad in ["1abc", "http://x", "HTTPS://x", "a", "a\u{7}b"] {
        assert_eq!(
            a.names.image_name.check(bad).map_err(|e| e.0),
            Err(TextProblem::Malformed),
            "{bad}"
        );
    }
    assert!(t.names.image_name.check("1abc").is_ok());
    assert!(t.names.image_name.check("  ").is_err());
    assert!(t.names.description.check("").is_ok());
}

#[test]
fn daily_limited_actions_are_operations() {
    let t = Config::tencent();
    assert_eq!(
        t.daily_limited(),
        [
            Operation::CreateImage,
            Operation::ImportImage,
            Operation::SyncImages,
            Operation::ExportImages
        ]
    );
    assert!(Config::alibaba().daily_limited().is_empty());
    for o in Operation::ALL {
        assert_eq!(Operation::parse(o.name()), Ok(o));
    }
    assert!(Operation::parse("CopyImage").is_err());
}

#[test]
fn the_printed_policy_reads_back_the_same() {
    for name in PRESETS {
        let c = Config::preset(name).unwrap_or_else(|| panic!("{name}"));
        let text = c.to_toml().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Config::from_toml(&text, None), Ok(c), "{name}");
    }
}
