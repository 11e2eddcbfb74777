//! CLIPImageProcessor parity: decoding (EXIF, grayscale, palette, alpha,
//! CMYK, 16-bit), resizing and cropping match transformers on committed
//! fixture images (tests/fixtures/images/reference_pixels.safetensors).

mod common;

use cliplens::config::PreprocessConfig;
use cliplens::preprocess::{decode_image, resize_and_crop};
use common::*;

/// The bound is 2/255 per pixel, but resizing and cropping are
/// bit-exact ports of Pillow, so losslessly stored images must match exactly.
const LOSSLESS_TOLERANCE: f32 = 0.0;
/// The bound, used to count JPEG values that exceed it.
const TOLERANCE: f32 = 2.0;
/// JPEG decoders disagree slightly: Pillow uses libjpeg-turbo, we use the
/// pure-Rust jpeg-decoder (its IDCT and YCbCr fixed-point rounding differ by
/// one level in chroma, which R and B amplify). On JPEGs we allow 3/255 at
/// worst, as long as fewer than 0.1% of values exceed 2/255.
const JPEG_TOLERANCE: f32 = 3.0;
const JPEG_SHARE_OVER_TOLERANCE: f32 = 0.001;

/// Where CLIP Lens deliberately differs from transformers. Pillow's
/// `convert("RGB")` clamps 16-bit samples to 0..255 instead of scaling them,
/// so a 16-bit photo turns almost white; we scale (v / 257) like every viewer.
const DELIBERATE_DEVIATIONS: &[&str] = &["gray16.png"];

#[test]
fn every_fixture_image_matches_transformers() {
    let reference = Reference::open(&fixtures().join("images/reference_pixels.safetensors"));
    let config_path = shared_data().join("clip-vit-base-patch32/preprocessor_config.json");
    let config = PreprocessConfig::from_json(&std::fs::read(&config_path).unwrap(), "preprocessor_config.json", 224).unwrap();
    assert!(reference.tensors.len() >= 8, "only {} reference images", reference.tensors.len());
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, (shape, expected)) in &reference.tensors {
        if DELIBERATE_DEVIATIONS.contains(&name.as_str()) {
            continue;
        }
        let bytes = std::fs::read(fixtures().join("images").join(name)).unwrap();
        let image = decode_image(&bytes, name).unwrap_or_else(|e| panic!("{e}"));
        let crop = resize_and_crop(&image, &config);
        assert_eq!(shape, &vec![3, crop.height, crop.width], "{name}: shape");
        let plane = crop.width * crop.height;
        let mut worst = 0.0f32;
        let mut over = 0usize;
        for (i, px) in crop.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let diff = (px[c] as f32 - expected[c * plane + i]).abs();
                worst = worst.max(diff);
                over += usize::from(diff > TOLERANCE);
            }
        }
        let share_over = over as f32 / (3 * plane) as f32;
        report.push(format!(
            "{name}: max |diff| {worst}/255, mean {:.4}/255, {:.3}% of values over {TOLERANCE}/255",
            mean_diff(&crop.pixels, expected, plane),
            100.0 * share_over
        ));
        let is_jpeg = name.ends_with(".jpg") || name.ends_with(".jpeg");
        let ok = if is_jpeg {
            worst <= JPEG_TOLERANCE && share_over < JPEG_SHARE_OVER_TOLERANCE
        } else {
            worst <= LOSSLESS_TOLERANCE
        };
        if !ok {
            failures.push(format!("{name}: max |diff| {worst}/255, {:.3}% over {TOLERANCE}/255", 100.0 * share_over));
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sixteen_bit_images_are_scaled_not_clamped() {
    let reference = Reference::open(&fixtures().join("images/reference_pixels.safetensors"));
    let (_, theirs) = reference.get("gray16.png");
    let bytes = std::fs::read(fixtures().join("images/gray16.png")).unwrap();
    let ours = decode_image(&bytes, "gray16.png").unwrap();
    let white = |v: &mut dyn Iterator<Item = f32>| {
        let all: Vec<f32> = v.collect();
        all.iter().filter(|&&x| x >= 254.0).count() as f32 / all.len() as f32
    };
    assert!(white(&mut theirs.iter().copied()) > 0.8, "transformers' reference saturates");
    assert!(white(&mut ours.pixels.iter().map(|&v| v as f32)) < 0.1, "ours keeps the ramp");
    let max = *ours.pixels.iter().max().unwrap();
    assert!(max >= 250, "the ramp reaches white: {max}");
}

#[test]
fn a_text_file_is_not_an_image() {
    let bytes = std::fs::read(fixtures().join("images/not_an_image.png")).unwrap();
    let err = decode_image(&bytes, "not_an_image.png").unwrap_err().to_string();
    assert!(err.starts_with("not_an_image.png: "), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn a_truncated_png_is_reported_not_panicked() {
    let bytes = std::fs::read(fixtures().join("images").join(first_png())).unwrap();
    let err = decode_image(&bytes[..bytes.len() / 2], "half.png").unwrap_err().to_string();
    assert!(err.starts_with("half.png: ") && err.contains("corrupt or truncated"), "{err}");
}

#[test]
fn a_huge_image_is_refused_before_decoding() {
    // A valid 20000x20000 PNG header; the pixel data is never reached.
    let mut png = Vec::new();
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&(ihdr.len() as u32).to_be_bytes());
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // The start of an IDAT chunk: decoders read the header up to here.
    let idat = b"IDAT\x78\x9c\x00\x00".to_vec();
    png.extend_from_slice(&1000u32.to_be_bytes());
    png.extend_from_slice(&idat);
    let err = decode_image(&png, "huge.png").unwrap_err().to_string();
    assert!(err.contains("huge.png") && err.contains("20000x20000"), "{err}");
}

/// The CMYK fixture with its frame header claiming `width` x `height`: the
/// decoder reads the size before any pixel, which is all the checks need.
fn cmyk_jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = std::fs::read(fixtures().join("images/cmyk.jpg")).unwrap();
    let sof = (2..jpeg.len() - 9)
        .find(|&i| jpeg[i] == 0xff && matches!(jpeg[i + 1], 0xc0 | 0xc1 | 0xc2))
        .expect("cmyk.jpg has a frame header");
    // FF Cn, length (2), precision (1), height (2), width (2), components (1).
    assert_eq!(jpeg[sof + 9], 4, "four components");
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

#[test]
fn a_cmyk_jpeg_too_large_to_decode_in_bounded_memory_is_refused() {
    // 100 megapixels passes the pixel limit, but its planes and output alone
    // would hold 800 MB: refused from the header, before any allocation.
    let err = decode_image(&cmyk_jpeg_claiming(10_000, 10_000), "big_cmyk.jpg").unwrap_err().to_string();
    assert!(err.starts_with("big_cmyk.jpg: is too large: 10000x10000 px CMYK would take about 800 MB"), "{err}");
    // The limit is 512 MiB: 8200 x 8200 CMYK (538 MB) is just over it.
    let err = decode_image(&cmyk_jpeg_claiming(8_200, 8_200), "cmyk67.jpg").unwrap_err().to_string();
    assert!(err.contains("would take about 538 MB"), "{err}");
    // A large but affordable one is decoded (its data is the small fixture's,
    // which jpeg-decoder pads out): whatever the outcome, not "too large".
    let outcome = decode_image(&cmyk_jpeg_claiming(2_000, 2_000), "cmyk4.jpg");
    assert!(outcome.as_ref().err().is_none_or(|e| !e.to_string().contains("too large")), "{:?}", outcome.err());
}

fn first_png() -> String {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("images"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png") && n != "not_an_image.png")
        .collect();
    names.sort();
    names.remove(0)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn mean_diff(ours: &[u8], theirs: &[f32], plane: usize) -> f32 {
    let mut total = 0.0;
    for (i, px) in ours.chunks_exact(3).enumerate() {
        for c in 0..3 {
            total += (px[c] as f32 - theirs[c * plane + i]).abs();
        }
    }
    total / (3 * plane) as f32
}
