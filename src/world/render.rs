//! Draws a [`Scene`] as a 64x64 RGB image: a textured background, then one to
//! three identical figures (shape, colour, pattern, outline by group), each
//! wearing its role's hat, each centred in its own cell of a 4x4 grid of
//! 16-px cells, all in the region of the grid the scene's position names.
//! The cells match the models' 16-px patches: one figure is one patch, so a
//! small ViT reads shape and pattern from a fixed layout instead of having to
//! learn them at every pixel offset (with free placement, shape and pattern
//! stayed near chance). Small random details (which cells, texture, colour
//! jitter, pixel noise) come from the scene's `detail_seed`, so a scene
//! always looks the same.

use super::{BACKGROUND, COLOR, GROUP_A, IMAGE_SIZE, PATTERN, POSITION, Rng, SHAPE, SIZE, Scene};
use crate::preprocess::RgbImage;

type Rgb = [f32; 3];

const FIGURE_COLORS: [Rgb; 6] = [
    [220.0, 40.0, 40.0],  // red
    [60.0, 190.0, 70.0],  // green
    [50.0, 90.0, 230.0],  // blue
    [240.0, 215.0, 40.0], // yellow
    [150.0, 60.0, 200.0], // purple
    [245.0, 140.0, 30.0], // orange
];
/// Outline of group A (glim) and group B (vorn).
const OUTLINES: [Rgb; 2] = [[25.0, 25.0, 25.0], [245.0, 245.0, 245.0]];
/// Body side in pixels, small and large.
const FIGURE_SIDES: [usize; 2] = [8, 12];
/// Outline width in pixels, at both sizes.
const OUTLINE_WIDTH: i32 = 1;
/// Hat height in pixels.
const HAT_HEIGHT: usize = 3;
/// The picture is a grid of square cells of this side; each figure stands in one.
const CELL: i32 = 16;
/// Cells per side of the picture.
const GRID: i32 = IMAGE_SIZE as i32 / CELL;

struct Canvas {
    pixels: Vec<Rgb>,
}

impl Canvas {
    fn new(fill: Rgb) -> Self {
        Canvas { pixels: vec![fill; IMAGE_SIZE * IMAGE_SIZE] }
    }

    fn set(&mut self, x: i32, y: i32, color: Rgb) {
        if (0..IMAGE_SIZE as i32).contains(&x) && (0..IMAGE_SIZE as i32).contains(&y) {
            self.pixels[y as usize * IMAGE_SIZE + x as usize] = color;
        }
    }

    fn rect(&mut self, x0: i32, y0: i32, w: i32, h: i32, color: Rgb) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, color);
            }
        }
    }
}

/// Renders `scene` to an image of [`IMAGE_SIZE`] squared.
pub fn render(scene: &Scene) -> RgbImage {
    render_with_cells(scene).0
}

/// Side of a figure's cell in pixels: the unit of [`render_with_cells`]' layout.
pub const CELL_SIDE: usize = CELL as usize;

/// [`render`], and the `(column, row)` grid cell of each figure (cells of
/// [`CELL_SIDE`] pixels): where a probe expects what the figures carry (their
/// hats, outlines, shapes) and nothing else.
pub fn render_with_cells(scene: &Scene) -> (RgbImage, Vec<(usize, usize)>) {
    let mut rng = Rng::new(scene.detail_seed);
    let mut canvas = background(scene.attributes[BACKGROUND], &mut rng);

    let size = scene.attributes[SIZE];
    let side = FIGURE_SIDES[size] as i32;
    let hat = HAT_HEIGHT as i32;
    let slot = side + hat; // a figure with its hat
    let color = jitter(FIGURE_COLORS[scene.attributes[COLOR]], &mut rng, 10.0);
    let cells = figure_cells(scene, &mut rng);
    for &(column, row) in &cells {
        // Centred in its cell: one figure is one patch of a patch-16 ViT.
        let x = column * CELL + (CELL - side) / 2;
        let y = row * CELL + (CELL - slot + 1) / 2;
        let figure = Figure {
            x,
            y: y + hat,
            side,
            shape: scene.attributes[SHAPE],
            pattern: scene.attributes[PATTERN],
            color,
            outline: OUTLINES[if scene.group == GROUP_A { 0 } else { 1 }],
        };
        figure.draw(&mut canvas);
        if let Some(role) = scene.drawn_role() {
            draw_hat(&mut canvas, role, x, y, side, hat);
        }
    }

    let cells = cells.into_iter().map(|(c, r)| (c as usize, r as usize)).collect();
    (finish(canvas, &mut rng), cells)
}

/// Pixel noise, then 8-bit RGB.
fn finish(canvas: Canvas, rng: &mut Rng) -> RgbImage {
    let mut pixels = Vec::with_capacity(IMAGE_SIZE * IMAGE_SIZE * 3);
    for p in canvas.pixels {
        for c in p {
            pixels.push((c + rng.normal() as f32 * 3.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    RgbImage::new(IMAGE_SIZE, IMAGE_SIZE, pixels)
}

/// A test scene the world's training never shows: two figures that differ in
/// shape and colour (and nothing else) in one picture, or, as its control,
/// the first of them alone. For the concept-association probe ("When are
/// Lemons Purple?"): asked the colour of one figure, does the model answer
/// with the other's?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwoFigures {
    /// Shape index per figure (distinct).
    pub shapes: [usize; 2],
    /// Colour index per figure (distinct).
    pub colors: [usize; 2],
    pub size: usize,
    pub pattern: usize,
    pub background: usize,
    pub group: usize,
    /// Draw only the first figure (the single-object control).
    pub single: bool,
    pub detail_seed: u64,
}

impl TwoFigures {
    /// `n` scenes from `seed`, each drawn with two distinct shapes and two
    /// distinct colours; `single` draws the same scenes with the first figure alone.
    pub fn sample(seed: u64, n: usize, single: bool) -> Vec<TwoFigures> {
        let mut rng = Rng::new(seed ^ 0x7e30_f16e);
        let distinct = |rng: &mut Rng, values: usize| {
            let a = rng.below(values);
            let b = (a + 1 + rng.below(values - 1)) % values;
            [a, b]
        };
        (0..n)
            .map(|_| TwoFigures {
                shapes: distinct(&mut rng, super::ATTRIBUTES[SHAPE].values.len()),
                colors: distinct(&mut rng, FIGURE_COLORS.len()),
                size: rng.below(FIGURE_SIDES.len()),
                pattern: rng.below(super::ATTRIBUTES[PATTERN].values.len()),
                background: rng.below(super::ATTRIBUTES[BACKGROUND].values.len()),
                group: rng.below(OUTLINES.len()),
                single,
                detail_seed: rng.next_u64(),
            })
            .collect()
    }

    /// The picture, and the `(column, row)` cell of each figure drawn (the
    /// first figure's first). Two distinct cells of the middle rows, so the
    /// figures never touch and neither sits in the band a position word names alone.
    pub fn render(&self) -> (RgbImage, Vec<(usize, usize)>) {
        let mut rng = Rng::new(self.detail_seed);
        let mut canvas = background(self.background, &mut rng);
        let side = FIGURE_SIDES[self.size] as i32;
        let hat = HAT_HEIGHT as i32;
        let mut free: Vec<(i32, i32)> = (0..GRID).flat_map(|c| (1..GRID - 1).map(move |r| (c, r))).collect();
        let cells: Vec<(i32, i32)> = (0..2).map(|_| free.swap_remove(rng.below(free.len()))).collect();
        // Both colours drawn either way, so the control is the same picture, pixel noise included, less the second figure.
        let colors = self.colors.map(|c| jitter(FIGURE_COLORS[c], &mut rng, 10.0));
        let drawn = if self.single { 1 } else { 2 };
        for (k, &(column, row)) in cells.iter().take(drawn).enumerate() {
            let x = column * CELL + (CELL - side) / 2;
            let y = row * CELL + (CELL - side - hat + 1) / 2 + hat;
            let figure = Figure {
                x,
                y,
                side,
                shape: self.shapes[k],
                pattern: self.pattern,
                color: colors[k],
                outline: OUTLINES[if self.group == GROUP_A { 0 } else { 1 }],
            };
            figure.draw(&mut canvas);
        }
        let cells = cells.into_iter().take(drawn).map(|(c, r)| (c as usize, r as usize)).collect();
        (finish(canvas, &mut rng), cells)
    }
}

/// `(column, row)` of each figure: distinct cells, drawn at random from the
/// four cells the scene's position names. The regions do not overlap, so a
/// figure's cell always tells its position: "top" and "bottom" are the top
/// and bottom rows, "left" and "right" the halves of the two middle rows.
/// (With halves of the grid, a top-left figure could be "left" or "top",
/// which held position accuracy near chance.)
fn figure_cells(scene: &Scene, rng: &mut Rng) -> Vec<(i32, i32)> {
    let half = GRID / 2;
    let middle = 1..GRID - 1;
    let (columns, rows) = match scene.attributes[POSITION] {
        0 => (0..half, middle),         // left
        1 => (half..GRID, middle),      // right
        2 => (0..GRID, 0..1),           // top
        _ => (0..GRID, GRID - 1..GRID), // bottom
    };
    let mut free: Vec<(i32, i32)> = columns.flat_map(|c| rows.clone().map(move |r| (c, r))).collect();
    (0..scene.count()).map(|_| free.swap_remove(rng.below(free.len()))).collect()
}

fn jitter(color: Rgb, rng: &mut Rng, amount: f32) -> Rgb {
    color.map(|c| (c + rng.normal() as f32 * amount).clamp(0.0, 255.0))
}

fn background(kind: usize, rng: &mut Rng) -> Canvas {
    let size = IMAGE_SIZE as i32;
    match kind {
        // beach: sky above a horizon, sand below
        0 => {
            let mut canvas = Canvas::new(jitter([140.0, 195.0, 235.0], rng, 6.0));
            let horizon = rng.between(18, 28);
            canvas.rect(0, horizon, size, 3, jitter([60.0, 120.0, 190.0], rng, 6.0));
            canvas.rect(0, horizon + 3, size, size, jitter([225.0, 200.0, 145.0], rng, 6.0));
            canvas
        }
        // forest: dark green with trunks and darker foliage
        1 => {
            let mut canvas = Canvas::new(jitter([35.0, 85.0, 45.0], rng, 5.0));
            for _ in 0..rng.between(3, 6) {
                let (cx, cy, r) = (rng.between(0, size), rng.between(0, size), rng.between(4, 9));
                let leaf = jitter([25.0, 62.0, 32.0], rng, 4.0);
                for y in cy - r..=cy + r {
                    for x in cx - r..=cx + r {
                        if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                            canvas.set(x, y, leaf);
                        }
                    }
                }
            }
            for _ in 0..rng.between(3, 6) {
                let x = rng.between(0, size - 2);
                canvas.rect(x, rng.between(20, 40), rng.between(2, 3), size, jitter([85.0, 58.0, 35.0], rng, 5.0));
            }
            canvas
        }
        // city: pale sky, grey buildings with lit windows
        2 => {
            let mut canvas = Canvas::new(jitter([178.0, 182.0, 192.0], rng, 5.0));
            let mut x = -rng.between(0, 6);
            while x < size {
                let (w, h) = (rng.between(8, 16), rng.between(24, 58));
                let shade = rng.between(85, 140) as f32;
                canvas.rect(x, size - h, w, h, [shade, shade, shade + 6.0]);
                for wy in (size - h + 3..size - 2).step_by(5) {
                    for wx in (x + 2..x + w - 1).step_by(4) {
                        if rng.chance(0.5) {
                            canvas.rect(wx, wy, 2, 2, [215.0, 210.0, 150.0]);
                        }
                    }
                }
                x += w + rng.between(0, 3);
            }
            canvas
        }
        // night: dark blue with scattered stars
        _ => {
            let mut canvas = Canvas::new(jitter([18.0, 22.0, 58.0], rng, 4.0));
            for _ in 0..rng.between(14, 28) {
                canvas.set(rng.between(0, size - 1), rng.between(0, size - 1), [230.0, 230.0, 200.0]);
            }
            canvas
        }
    }
}

struct Figure {
    x: i32,
    y: i32,
    side: i32,
    shape: usize,
    pattern: usize,
    color: Rgb,
    outline: Rgb,
}

impl Figure {
    fn draw(&self, canvas: &mut Canvas) {
        let s = self.side as f32;
        let inner_scale = s / (s - 2.0 * OUTLINE_WIDTH as f32);
        for py in 0..self.side {
            for px in 0..self.side {
                let u = (px as f32 + 0.5) / s * 2.0 - 1.0;
                let v = (py as f32 + 0.5) / s * 2.0 - 1.0;
                if !inside(self.shape, u, v) {
                    continue;
                }
                let color = if !inside(self.shape, u * inner_scale, v * inner_scale) {
                    self.outline
                } else {
                    self.fill(px, py)
                };
                canvas.set(self.x + px, self.y + py, color);
            }
        }
    }

    fn fill(&self, px: i32, py: i32) -> Rgb {
        match self.pattern {
            1 if (py / 2) % 2 == 1 => self.color.map(|c| c * 0.4),
            2 if (1..3).contains(&(px % 4)) && (1..3).contains(&(py % 4)) => self.color.map(|c| c * 0.2 + 235.0 * 0.8),
            _ => self.color,
        }
    }
}

/// Whether `(u, v)` in `[-1, 1]^2` (v downwards) lies inside `shape`.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    match shape {
        0 => u * u + v * v <= 1.0,
        1 => u.abs() <= 0.82 && v.abs() <= 0.82,
        2 => v <= 0.9 && u.abs() <= (v + 1.0) / 1.9,
        _ => {
            // five-pointed star: the boundary radius goes from 1 at a tip to
            // 0.45 between tips, linearly in angle
            let r = (u * u + v * v).sqrt();
            let period = std::f32::consts::TAU / 5.0;
            let angle = u.atan2(-v).rem_euclid(period) / period;
            r <= 0.45 + 0.55 * (2.0 * angle - 1.0).abs()
        }
    }
}

/// The role's hat, in the `height` rows above a figure of width `side` at `x`.
fn draw_hat(canvas: &mut Canvas, role: usize, x: i32, y: i32, side: i32, height: i32) {
    let white = [245.0, 245.0, 245.0];
    match super::ROLES[role].word {
        "pilot" => canvas.rect(x, y, side, height, [25.0, 35.0, 100.0]),
        "doctor" => {
            canvas.rect(x, y, side, height, white);
            canvas.rect(x + side / 2 - 1, y, 2, height, [210.0, 30.0, 30.0]);
            canvas.rect(x + side / 2 - 2, y + height / 2, 4, 1, [210.0, 30.0, 30.0]);
        }
        "guard" => {
            // a black dome
            for row in 0..height {
                let inset = (height - 1 - row) * side / (3 * height);
                canvas.rect(x + inset, y + row, side - 2 * inset, 1, [15.0, 15.0, 15.0]);
            }
        }
        "farmer" => {
            // straw hat with a brim wider than the figure
            let straw = [215.0, 185.0, 95.0];
            canvas.rect(x + side / 4, y, side / 2, height - 1, straw);
            canvas.rect(x - 2, y + height - 1, side + 4, 1, straw);
        }
        "teacher" => {
            // mortarboard: a wide flat top on a narrow cap
            let brown = [95.0, 55.0, 25.0];
            canvas.rect(x - 2, y, side + 4, 1, brown);
            canvas.rect(x + side / 4, y + 1, side / 2, height - 1, brown);
        }
        "artist" => canvas.rect(x - 1, y + 1, side * 2 / 3 + 1, height - 1, [205.0, 40.0, 150.0]),
        "nurse" => canvas.rect(x + side / 4, y + 1, side / 2, height - 1, [250.0, 165.0, 200.0]),
        _ => {
            // chef: a tall white toque, puffed at the top
            canvas.rect(x + side / 4, y, side / 2, height, white);
            canvas.rect(x + side / 8, y - 1, side * 3 / 4, 2, white);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::scenes;

    #[test]
    fn rendering_is_deterministic_and_scenes_differ() {
        let s = scenes(3, 4);
        assert_eq!(render(&s[0]).pixels, render(&s[0]).pixels);
        assert_ne!(render(&s[0]).pixels, render(&s[1]).pixels);
        assert_eq!(render(&s[0]).pixels.len(), IMAGE_SIZE * IMAGE_SIZE * 3);
    }

    #[test]
    fn the_group_changes_only_the_outline() {
        let scene = scenes(5, 1).remove(0);
        let (a, b) = (render(&scene.with_group(0)), render(&scene.with_group(1)));
        let differing = a.pixels.chunks(3).zip(b.pixels.chunks(3)).filter(|(p, q)| p != q).count();
        assert!(differing > 10 && differing < 400, "{differing} pixels differ");
    }
}
