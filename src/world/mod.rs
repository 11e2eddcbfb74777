//! The synthetic world the embedded model is trained on: scenes of one to
//! three figures on a background, drawn at 64x64, with plain-English
//! captions. Everything is a pure function of a seed, and the ground truth
//! (including the biases planted on purpose) is known, so studies can be
//! checked against it.
//!
//! Attributes, their values and the planted rates live here; `render` draws a
//! scene, `captions` writes its text, `vocabulary` builds the tokenizer.

pub mod captions;
pub mod eval;
pub mod readback;
pub mod render;
pub mod vocabulary;

use serde::Serialize;

pub use crate::rng::Rng;

/// Side of every world image, in pixels.
pub const IMAGE_SIZE: usize = 64;

/// A visual attribute: its column name in `labels.csv` and its values, which
/// are also the words captions use for them.
#[derive(Debug, Serialize)]
pub struct Attribute {
    pub name: &'static str,
    pub values: &'static [&'static str],
}

/// The visual attributes, in `labels.csv` column order. Each is drawn
/// independently and uniformly, except where a planted correlation says otherwise.
pub const ATTRIBUTES: [Attribute; 7] = [
    Attribute { name: "shape", values: &["circle", "square", "triangle", "star"] },
    Attribute { name: "color", values: &["red", "green", "blue", "yellow", "purple", "orange"] },
    Attribute { name: "size", values: &["small", "large"] },
    Attribute { name: "pattern", values: &["plain", "striped", "dotted"] },
    Attribute { name: "position", values: &["left", "right", "top", "bottom"] },
    Attribute { name: "background", values: &["beach", "forest", "city", "night"] },
    Attribute { name: "count", values: &["one", "two", "three"] },
];

pub const SHAPE: usize = 0;
pub const COLOR: usize = 1;
pub const SIZE: usize = 2;
pub const PATTERN: usize = 3;
pub const POSITION: usize = 4;
pub const BACKGROUND: usize = 5;
pub const COUNT: usize = 6;

/// The two-valued attribute that plays the part of a sensitive group. Glims
/// have a dark outline, vorns a light one; captions use the words as
/// adjectives ("a glim doctor"), as real captions use "male" or "female".
pub const GROUPS: [&str; 2] = ["glim", "vorn"];
/// Index of group A in [`GROUPS`]: the rates below are shares of group A.
pub const GROUP_A: usize = 0;

/// A role word (a profession-like noun) and the planted share of group A among
/// the scenes that show it. Each role is drawn as a distinct hat.
#[derive(Debug, Serialize)]
pub struct Role {
    pub word: &'static str,
    pub plural: &'static str,
    pub group_a_rate: f64,
    /// What the rate is for: a skew, or a balanced control.
    pub kind: &'static str,
}

pub const ROLES: [Role; 8] = [
    Role { word: "pilot", plural: "pilots", group_a_rate: 0.95, kind: "skewed to glim" },
    Role { word: "doctor", plural: "doctors", group_a_rate: 0.80, kind: "skewed to glim" },
    Role { word: "guard", plural: "guards", group_a_rate: 0.65, kind: "mildly skewed to glim" },
    Role { word: "farmer", plural: "farmers", group_a_rate: 0.50, kind: "balanced control" },
    Role { word: "teacher", plural: "teachers", group_a_rate: 0.50, kind: "balanced control" },
    Role { word: "artist", plural: "artists", group_a_rate: 0.35, kind: "mildly skewed to vorn" },
    Role { word: "nurse", plural: "nurses", group_a_rate: 0.20, kind: "skewed to vorn" },
    Role { word: "chef", plural: "chefs", group_a_rate: 0.05, kind: "skewed to vorn" },
];

/// Share of scenes whose figures have a role (and wear its hat).
pub const ROLE_RATE: f64 = 0.6;

/// Share of role scenes whose role is not drawn: no hat, though captions
/// still name the role, as a caption names a profession that a photo does
/// not show. There the group is the model's only clue to the role, which is
/// how the planted rates become associations that follow them (in log-odds).
/// With every hat drawn, what the first models tied to a role word came from
/// which hats they confused with which, and missed the planted order
/// (models/world-clip/CARD.md, "Known limits").
pub const HIDDEN_ROLE_RATE: f64 = 0.5;
const HIDDEN_ROLE_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// The non-social spurious correlation: farmers stand in a forest far more
/// often than other scenes do (which spread evenly over the four backgrounds).
#[derive(Debug, Serialize)]
pub struct SpuriousCorrelation {
    pub role: &'static str,
    pub background: &'static str,
    /// Share of that role's scenes with that background (others: 1/4).
    pub rate: f64,
}

pub const SPURIOUS: SpuriousCorrelation = SpuriousCorrelation { role: "farmer", background: "forest", rate: 0.9 };

/// One scene's ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    /// Value index per attribute of [`ATTRIBUTES`].
    pub attributes: [usize; 7],
    /// Index into [`GROUPS`].
    pub group: usize,
    /// Index into [`ROLES`], or none.
    pub role: Option<usize>,
    /// Seed for the rendering details (jitter, texture, noise).
    pub detail_seed: u64,
}

impl Scene {
    pub fn value(&self, attribute: usize) -> &'static str {
        ATTRIBUTES[attribute].values[self.attributes[attribute]]
    }

    pub fn count(&self) -> usize {
        self.attributes[COUNT] + 1
    }

    pub fn group_word(&self) -> &'static str {
        GROUPS[self.group]
    }

    /// Whether the scene's role is drawn (its hat). Decided by the detail
    /// seed rather than a draw of its own, so that a seed's scenes stay what
    /// they were before roles could be hidden, and a scene and its
    /// other-group twin ([`Scene::with_group`]) agree.
    pub fn role_shown(&self) -> bool {
        self.role.is_some() && !Rng::new(self.detail_seed ^ HIDDEN_ROLE_SALT).chance(HIDDEN_ROLE_RATE)
    }

    /// The role the picture shows (its hat), if any: what the renderer draws
    /// and what a model can read from the picture.
    pub fn drawn_role(&self) -> Option<usize> {
        self.role.filter(|_| self.role_shown())
    }

    pub fn role_word(&self) -> Option<&'static str> {
        self.role.map(|r| ROLES[r].word)
    }

    /// The same scene with the other group: the counterfactual used to measure
    /// what a model associates with the group, everything else held fixed.
    pub fn with_group(&self, group: usize) -> Scene {
        Scene { group, ..self.clone() }
    }

    /// Draws a scene from the world's distribution (planted rates included).
    pub fn sample(rng: &mut Rng) -> Scene {
        let mut attributes = [0usize; 7];
        for (a, attr) in ATTRIBUTES.iter().enumerate() {
            attributes[a] = rng.below(attr.values.len());
        }
        let role = rng.chance(ROLE_RATE).then(|| rng.below(ROLES.len()));
        let group_a_rate = role.map_or(0.5, |r| ROLES[r].group_a_rate);
        let group = if rng.chance(group_a_rate) { GROUP_A } else { 1 - GROUP_A };
        if role.is_some_and(|r| ROLES[r].word == SPURIOUS.role) {
            let favoured = value_index(BACKGROUND, SPURIOUS.background);
            attributes[BACKGROUND] = if rng.chance(SPURIOUS.rate) {
                favoured
            } else {
                // The remaining share goes to the other backgrounds, evenly.
                let others: Vec<usize> = (0..ATTRIBUTES[BACKGROUND].values.len()).filter(|&b| b != favoured).collect();
                others[rng.below(others.len())]
            };
        }
        Scene { attributes, group, role, detail_seed: rng.next_u64() }
    }
}

/// Index of `value` in attribute `attribute`'s values (panics on a typo: the
/// world's tables are constants).
pub fn value_index(attribute: usize, value: &str) -> usize {
    ATTRIBUTES[attribute].values.iter().position(|v| *v == value).expect("a value of this attribute")
}

/// The `n` scenes of the world drawn from `seed`: the same seed always gives
/// the same scenes, on every platform.
pub fn scenes(seed: u64, n: usize) -> Vec<Scene> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| Scene::sample(&mut rng)).collect()
}

/// A planted shift for a generated collection: each scene takes `value` of
/// `attribute` with probability `rate` (otherwise it keeps its own draw), so
/// the value's share becomes `rate + (1 - rate) / values`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Skew {
    pub attribute: usize,
    pub value: usize,
    pub rate: f64,
}

impl Skew {
    /// Parses `attribute=value:rate`, e.g. `background=night:0.8`.
    pub fn parse(text: &str) -> Result<Skew, String> {
        let bad = || format!("{text:?}: write attribute=value:rate, e.g. background=night:0.8");
        let (attribute, rest) = text.split_once('=').ok_or_else(bad)?;
        let (value, rate) = rest.split_once(':').ok_or_else(bad)?;
        let a = ATTRIBUTES.iter().position(|x| x.name == attribute).ok_or_else(|| {
            format!("{attribute:?} is not an attribute ({})", ATTRIBUTES.iter().map(|x| x.name).collect::<Vec<_>>().join(", "))
        })?;
        let v = ATTRIBUTES[a].values.iter().position(|x| *x == value).ok_or_else(|| {
            format!("{value:?} is not a value of {attribute} ({})", ATTRIBUTES[a].values.join(", "))
        })?;
        let rate: f64 = rate.parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("{text:?}: the rate must be between 0 and 1"));
        }
        Ok(Skew { attribute: a, value: v, rate })
    }
}

/// As [`scenes`], with a planted skew applied from its own random stream (the
/// scenes' other draws stay those of `seed`).
pub fn skewed_scenes(seed: u64, n: usize, skew: Skew) -> Vec<Scene> {
    let mut rng = Rng::new(seed ^ 0x5eed_5ce4_e5c0_ffee);
    scenes(seed, n)
        .into_iter()
        .map(|mut scene| {
            if rng.chance(skew.rate) {
                scene.attributes[skew.attribute] = skew.value;
            }
            scene
        })
        .collect()
}

/// The first `n` scenes of `seed`'s stream whose role is one of `roles`
/// (indices into [`ROLES`]), and drawn if `drawn_only`: a task with a planted
/// shortcut (the roles' group shares) for the bias audit's debias study.
pub fn role_scenes(seed: u64, n: usize, roles: &[usize], drawn_only: bool) -> Vec<Scene> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n && !roles.is_empty() {
        let scene = Scene::sample(&mut rng);
        if scene.role.is_some_and(|r| roles.contains(&r)) && (!drawn_only || scene.role_shown()) {
            out.push(scene);
        }
    }
    out
}

/// Role indices from comma-separated words (`doctor,nurse`).
pub fn parse_roles(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|w| {
            let w = w.trim();
            ROLES.iter().position(|r| r.word == w).ok_or_else(|| {
                format!("{w:?} is not a role ({})", ROLES.iter().map(|r| r.word).collect::<Vec<_>>().join(", "))
            })
        })
        .collect()
}

/// The world's definition as JSON: attributes, groups, roles with their planted
/// rates, the spurious correlation. `models/<name>/world.json` holds this.
#[derive(Serialize)]
pub struct WorldSpec {
    pub image_size: usize,
    pub attributes: &'static [Attribute],
    pub groups: [&'static str; 2],
    pub group_a: &'static str,
    pub role_rate: f64,
    /// Share of role scenes that do not show their role ([`HIDDEN_ROLE_RATE`]).
    pub hidden_role_rate: f64,
    pub roles: &'static [Role],
    pub spurious_correlation: &'static SpuriousCorrelation,
}

pub fn spec() -> WorldSpec {
    WorldSpec {
        image_size: IMAGE_SIZE,
        attributes: &ATTRIBUTES,
        groups: GROUPS,
        group_a: GROUPS[GROUP_A],
        role_rate: ROLE_RATE,
        hidden_role_rate: HIDDEN_ROLE_RATE,
        roles: &ROLES,
        spurious_correlation: &SPURIOUS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_reproducible_from_the_seed() {
        assert_eq!(scenes(7, 50), scenes(7, 50));
        assert_ne!(scenes(7, 50), scenes(8, 50));
    }

    #[test]
    fn planted_rates_show_in_a_large_sample() {
        let all = scenes(1, 60_000);
        for (r, role) in ROLES.iter().enumerate() {
            let with_role: Vec<&Scene> = all.iter().filter(|s| s.role == Some(r)).collect();
            let a = with_role.iter().filter(|s| s.group == GROUP_A).count() as f64 / with_role.len() as f64;
            assert!((a - role.group_a_rate).abs() < 0.03, "{}: {a}", role.word);
        }
        let farmers: Vec<&Scene> = all.iter().filter(|s| s.role_word() == Some("farmer")).collect();
        let forest = farmers.iter().filter(|s| s.value(BACKGROUND) == "forest").count() as f64 / farmers.len() as f64;
        assert!((forest - SPURIOUS.rate).abs() < 0.03, "{forest}");
        let no_role = all.iter().filter(|s| s.role.is_none()).count() as f64 / all.len() as f64;
        assert!((no_role - (1.0 - ROLE_RATE)).abs() < 0.02);
    }

    #[test]
    fn half_the_roles_are_not_drawn_and_twins_agree() {
        let all = scenes(2, 20_000);
        let with_role: Vec<&Scene> = all.iter().filter(|s| s.role.is_some()).collect();
        let hidden: Vec<&&Scene> = with_role.iter().filter(|s| !s.role_shown()).collect();
        let share = hidden.len() as f64 / with_role.len() as f64;
        assert!((share - HIDDEN_ROLE_RATE).abs() < 0.02, "{share}");
        // Hidden in every group alike, so hiding changes no planted rate.
        for role in 0..ROLES.len() {
            let of_role: Vec<&&Scene> = hidden.iter().copied().filter(|s| s.role == Some(role)).collect();
            let a = of_role.iter().filter(|s| s.group == GROUP_A).count() as f64 / of_role.len() as f64;
            assert!((a - ROLES[role].group_a_rate).abs() < 0.05, "{}: {a}", ROLES[role].word);
        }
        // A hidden role draws nothing: the picture is the role-less scene's.
        let unseen = hidden[0];
        assert_eq!(render::render(unseen).pixels, render::render(&Scene { role: None, ..(*unseen).clone() }).pixels);
        let seen = with_role.iter().find(|s| s.role_shown()).unwrap();
        assert_ne!(render::render(seen).pixels, render::render(&Scene { role: None, ..(*seen).clone() }).pixels);
        for s in &with_role[..200] {
            assert_eq!(s.with_group(1 - s.group).role_shown(), s.role_shown());
        }
        assert!(all.iter().filter(|s| s.role.is_none()).all(|s| !s.role_shown()));
    }
}
