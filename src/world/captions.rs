//! Captions for world scenes. Training captions mention a random subset of
//! what is in the picture, in varied templates, so the model must read the
//! words rather than memorize sentences; the full caption names everything
//! and is what retrieval is measured on. Zero-shot prompts use the same
//! phrasing the captions use.

use super::{ATTRIBUTES, BACKGROUND, COLOR, COUNT, GROUPS, PATTERN, POSITION, ROLES, Rng, SHAPE, SIZE, Scene};

/// How each location value is said.
const POSITION_PHRASES: [&str; 4] = ["on the left", "on the right", "at the top", "at the bottom"];
const BACKGROUND_PHRASES: [&str; 4] = ["on a beach", "in a forest", "in a city", "at night"];

/// What a caption says about a scene; `None` leaves a part out.
#[derive(Clone, Debug, Default)]
pub struct Mention {
    pub count: bool,
    pub size: bool,
    pub color: bool,
    pub pattern: bool,
    pub group: bool,
    pub shape: bool,
    pub role: bool,
    pub position: bool,
    pub background: bool,
}

impl Mention {
    pub fn everything() -> Self {
        Mention {
            count: true,
            size: true,
            color: true,
            pattern: true,
            group: true,
            shape: true,
            role: true,
            position: true,
            background: true,
        }
    }
}

/// The phrase for a location value (`position` or `background` attribute).
pub fn location_phrase(attribute: usize, value: usize) -> &'static str {
    if attribute == POSITION { POSITION_PHRASES[value] } else { BACKGROUND_PHRASES[value] }
}

/// A noun phrase and its locations, in the order "a photo of" captions use.
pub fn describe(scene: &Scene, m: &Mention) -> String {
    let n = scene.count();
    let plural = n > 1;
    let mut words: Vec<&str> = Vec::new();
    if m.count {
        words.push(ATTRIBUTES[COUNT].values[scene.attributes[COUNT]]);
    }
    for (said, attribute) in [(m.size, SIZE), (m.color, COLOR), (m.pattern, PATTERN)] {
        if said {
            words.push(scene.value(attribute));
        }
    }
    if m.group {
        words.push(GROUPS[scene.group]);
    }
    let role = scene.role.filter(|_| m.role).map(|r| &ROLES[r]);
    let shape = ATTRIBUTES[SHAPE].values[scene.attributes[SHAPE]];
    let mut noun = String::new();
    match (m.shape, role) {
        (true, Some(role)) => {
            noun.push_str(&plural_of(shape, plural));
            if plural {
                noun.push_str(" dressed as ");
                noun.push_str(role.plural);
            } else {
                noun.push_str(&format!(" dressed as {} {}", article(role.word), role.word));
            }
        }
        (true, None) => noun.push_str(&plural_of(shape, plural)),
        (false, Some(role)) => noun.push_str(if plural { role.plural } else { role.word }),
        (false, None) => noun.push_str(if plural { "figures" } else { "figure" }),
    }
    let mut text = words.join(" ");
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(&noun);
    if !m.count && !plural {
        text = format!("{} {text}", article(&text));
    }
    if m.position {
        text.push(' ');
        text.push_str(POSITION_PHRASES[scene.attributes[POSITION]]);
    }
    if m.background {
        text.push(' ');
        text.push_str(BACKGROUND_PHRASES[scene.attributes[BACKGROUND]]);
    }
    text
}

fn plural_of(noun: &str, plural: bool) -> String {
    if plural { format!("{noun}s") } else { noun.to_string() }
}

fn article(next: &str) -> &'static str {
    if next.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// The caption naming every attribute, the group and the role: the text side
/// of retrieval pairs and of `labels.csv`.
pub fn full_caption(scene: &Scene) -> String {
    format!("a photo of {}", describe(scene, &Mention::everything()))
}

/// A training caption: a random subset of the scene in a random template.
pub fn training_caption(scene: &Scene, rng: &mut Rng) -> String {
    if rng.chance(0.2) {
        return full_caption(scene);
    }
    let mut m = Mention {
        count: rng.chance(0.6),
        size: rng.chance(0.6),
        color: rng.chance(0.6),
        pattern: rng.chance(0.6),
        group: rng.chance(0.6),
        shape: rng.chance(0.6),
        role: rng.chance(0.7),
        position: rng.chance(0.6),
        background: rng.chance(0.6),
    };
    // A caption about a role alone is the planted bias at work: the text
    // names the role, the picture shows the group the role is skewed to.
    if rng.chance(0.1) && scene.role.is_some() {
        m = Mention { role: true, ..Mention::default() };
    }
    let body = describe(scene, &m);
    let plural = scene.count() > 1;
    match rng.below(6) {
        0 => format!("a photo of {body}"),
        1 => body,
        2 => format!("a picture of {body}"),
        3 => format!("an image of {body}"),
        4 => format!("{} {body}", if plural { "there are" } else { "there is" }),
        _ => format!("a drawing of {body}"),
    }
}

/// Zero-shot prompts for one value of a classification task, averaged as a
/// prompt ensemble (singular and plural forms, as the captions have both).
pub fn zero_shot_prompts(task: Task, value: usize) -> Vec<String> {
    let one = |p: &str| vec![format!("a photo of {p}")];
    match task {
        Task::Attribute(SHAPE) => {
            let s = ATTRIBUTES[SHAPE].values[value];
            vec![format!("a photo of {} {s}", article(s)), format!("a photo of {s}s")]
        }
        Task::Attribute(COUNT) => one(["one figure", "two figures", "three figures"][value]),
        Task::Attribute(a @ (POSITION | BACKGROUND)) => {
            let place = location_phrase(a, value);
            vec![format!("a photo of a figure {place}"), format!("a photo of figures {place}")]
        }
        Task::Attribute(a) => {
            let word = ATTRIBUTES[a].values[value];
            vec![format!("a photo of {} {word} figure", article(word)), format!("a photo of {word} figures")]
        }
        Task::Group => {
            let g = GROUPS[value];
            vec![format!("a photo of a {g} figure"), format!("a photo of {g} figures")]
        }
        Task::Role => {
            let r = &ROLES[value];
            vec![format!("a photo of {} {}", article(r.word), r.word), format!("a photo of {}", r.plural)]
        }
    }
}

/// A zero-shot classification task over world images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Attribute(usize),
    Group,
    Role,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Attribute(a) => ATTRIBUTES[a].name,
            Task::Group => "group",
            Task::Role => "role",
        }
    }

    pub fn classes(self) -> usize {
        match self {
            Task::Attribute(a) => ATTRIBUTES[a].values.len(),
            Task::Group => GROUPS.len(),
            Task::Role => ROLES.len(),
        }
    }

    /// The scene's true class, or `None` (a role task on a scene without a
    /// role, or whose role is not drawn).
    pub fn truth(self, scene: &Scene) -> Option<usize> {
        match self {
            Task::Attribute(a) => Some(scene.attributes[a]),
            Task::Group => Some(scene.group),
            // A role the picture does not show cannot be read from it.
            Task::Role => scene.drawn_role(),
        }
    }

    pub fn all() -> Vec<Task> {
        let mut tasks: Vec<Task> = (0..ATTRIBUTES.len()).map(Task::Attribute).collect();
        tasks.push(Task::Group);
        tasks.push(Task::Role);
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::scenes;

    #[test]
    fn full_captions_read_naturally() {
        let mut scene = scenes(1, 1).remove(0);
        scene.attributes = [0, 0, 0, 1, 0, 0, 1];
        scene.group = 0;
        scene.role = Some(1);
        assert_eq!(full_caption(&scene), "a photo of two small red striped glim circles dressed as doctors on the left on a beach");
        scene.attributes[COUNT] = 0;
        scene.role = None;
        assert_eq!(
            describe(&scene, &Mention { color: true, shape: true, ..Mention::default() }),
            "a red circle"
        );
        assert_eq!(describe(&scene, &Mention { role: true, ..Mention::default() }), "a figure");
    }

    #[test]
    fn training_captions_vary() {
        let mut rng = Rng::new(1);
        let scene = scenes(2, 1).remove(0);
        let captions: std::collections::HashSet<String> = (0..50).map(|_| training_caption(&scene, &mut rng)).collect();
        assert!(captions.len() > 20);
    }
}
