//! Checking the `grading.json` an agent wrote against the plan it was given: a malformed or
//! incomplete file is a grading failure (exit 2), never a grade.

use std::path::Path;

use anyhow::{Context, Result, bail};
use bench_formats::grading::{GradingFile, StepOutcome};

/// Reads the agent's results file and checks it covers `expected` (the skeleton it was
/// given): the same features with the same steps, every feature judged, scores within their
/// maximum, totals that add up.
pub fn read_and_check(path: &Path, expected: &GradingFile) -> Result<GradingFile> {
    if !path.is_file() {
        bail!(
            "the grading agent did not write its results file {}",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the agent's results {}", path.display()))?;
    let file: GradingFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "the agent's results {} are not a valid grading.json",
            path.display()
        )
    })?;
    file.check_version()?;
    check_against(&file, expected)
        .with_context(|| format!("the agent's results {} are incomplete", path.display()))?;
    Ok(file)
}

/// The structural checks of [`read_and_check`].
pub fn check_against(file: &GradingFile, expected: &GradingFile) -> Result<()> {
    if file.level != expected.level {
        bail!("level {} graded, {} asked for", file.level, expected.level);
    }
    let ids: Vec<u32> = file.features.iter().map(|f| f.id).collect();
    let wanted: Vec<u32> = expected.features.iter().map(|f| f.id).collect();
    if ids != wanted {
        bail!("features {ids:?} graded, {wanted:?} expected (in that order)");
    }
    for (got, want) in file.features.iter().zip(&expected.features) {
        let steps: Vec<u32> = got.steps.iter().map(|s| s.index).collect();
        let want_steps: Vec<u32> = want.steps.iter().map(|s| s.index).collect();
        if steps != want_steps {
            bail!(
                "feature {}: steps {steps:?} reported, the plan has {want_steps:?}",
                got.id
            );
        }
        if got.max != want.max || got.score > got.max {
            bail!(
                "feature {}: score {}/{} (the maximum is {})",
                got.id,
                got.score,
                got.max,
                want.max
            );
        }
        if got.steps.iter().all(|s| s.outcome == StepOutcome::NotRun) {
            bail!("feature {}: no step was carried out", got.id);
        }
        if got.score < got.max && got.reasons.is_empty() {
            bail!(
                "feature {}: {} point(s) lost without a reason",
                got.id,
                got.max - got.score
            );
        }
    }
    let score: u32 = file.features.iter().map(|f| f.score).sum();
    let max: u32 = file.features.iter().map(|f| f.max).sum();
    if (file.score, file.max) != (score, max) {
        bail!(
            "total {}/{} does not add up (features sum to {score}/{max})",
            file.score,
            file.max
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_content::Levels;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn a_complete_file_passes_and_gaps_are_named() {
        let levels = Levels::load(&root()).unwrap();
        let features = crate::program::select_features(&levels, 1, &[]).unwrap();
        let skeleton = super::super::prompt::skeleton(&levels, &features, 1, "http://x/");
        let mut file = skeleton.clone();
        // Untouched, nothing was judged.
        let err = check_against(&file, &skeleton).unwrap_err().to_string();
        assert!(err.contains("no step was carried out"), "{err}");
        for f in &mut file.features {
            f.score = f.max;
            for s in &mut f.steps {
                s.outcome = StepOutcome::Passed;
            }
        }
        file.score = file.max;
        check_against(&file, &skeleton).unwrap();
        let mut short = file.clone();
        short.features.pop();
        let err = check_against(&short, &skeleton).unwrap_err().to_string();
        assert!(err.contains("expected"), "{err}");
        let mut lost = file.clone();
        lost.features[0].score = 2;
        lost.score -= 1;
        let err = check_against(&lost, &skeleton).unwrap_err().to_string();
        assert!(err.contains("without a reason"), "{err}");
        lost.features[0].reasons.push("x".into());
        lost.score += 1;
        let err = check_against(&lost, &skeleton).unwrap_err().to_string();
        assert!(err.contains("does not add up"), "{err}");
    }
}
