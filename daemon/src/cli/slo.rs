//! `tributary slo export|import`: the config's SLOs to OpenSLO YAML and
//! back. The translation is `slo::openslo`'s; this reads files and prints.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::slo::openslo;

pub(super) fn export(file: &Path) -> anyhow::Result<()> {
    let text = super::read_config(file)?;
    // Only the SLOs are wanted: checks of connectors not at hand are fine.
    let options = crate::config::Options {
        require_known_connectors: false,
        ..Default::default()
    };
    let config = crate::config::parse_with(&text, file, &Default::default(), options)
        .map_err(|errors| anyhow::anyhow!("{errors}"))
        .with_context(|| format!("invalid config {}", file.display()))?;
    if config.slos.is_empty() {
        eprintln!("no [[slos]] in {}", file.display());
    }
    print!("{}", openslo::export(&config.slos));
    Ok(())
}

pub(super) fn import(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        texts.push((file.clone(), text));
    }
    let imported = match openslo::import(&texts) {
        Ok(imported) => imported,
        Err(errors) => {
            eprintln!("{errors}");
            anyhow::bail!("{} error(s): nothing imported", errors.0.len())
        }
    };
    for (file, document, kind) in &imported.skipped {
        eprintln!(
            "{}: document {document}: a {kind}, not an SLO: left out",
            file.display()
        );
    }
    if imported.slos == 0 {
        anyhow::bail!("no OpenSLO `kind: SLO` document in the files given");
    }
    print!("{}", imported.toml);
    Ok(())
}
