//! The container image and the Kubernetes manifests, linted (no cluster or image registry
//! here): every container runs the binary as a non-root user with flags it accepts, is
//! probed at /readyz and /healthz, and every Service selects the pods of a Deployment.

mod common;

use common::{kairos, repo};
use yaml_rust2::{Yaml, YamlLoader};

/// Whether `kairos ARGS --help` accepts the arguments (clap checks every flag and value
/// before it prints help).
fn accepted(args: &[String]) -> Result<(), String> {
    let out = kairos().args(args).arg("--help").output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kairos {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Kubernetes' `$(VAR)` references replaced by a value of the kind the variable holds.
fn expand(arg: &str) -> String {
    let sample = |name: &str| match name {
        n if n.ends_with("DATABASE_URL") => "postgres://kairos@db/kairos",
        "REDIS_URL" => "redis://redis:6379",
        _ => "kairos-0",
    };
    match arg.strip_prefix("$(").and_then(|a| a.strip_suffix(')')) {
        Some(name) => sample(name).to_string(),
        None => arg.to_string(),
    }
}

fn manifests() -> Vec<Yaml> {
    let dir = repo().join("deploy/kubernetes");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        docs.extend(parsed);
    }
    docs
}

#[test]
fn the_kubernetes_manifests_run_what_the_binary_accepts_safely() {
    let docs = manifests();
    let deployments: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Deployment"))
        .collect();
    assert_eq!(deployments.len(), 2, "a control plane and a runtime group");
    for d in &deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(
            d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"],
            "{name} selects its own pods"
        );
        for c in pod["containers"].as_vec().unwrap() {
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/readyz"),
                "{name}"
            );
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/healthz"),
                "{name}"
            );
            let security = &c["securityContext"];
            assert_eq!(
                security["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}"
            );
            assert_eq!(
                security["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}"
            );
            let args: Vec<String> = c["args"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|a| expand(a.as_str().unwrap()))
                .collect();
            accepted(&args).unwrap();
            // Every variable an argument names is set.
            let env: Vec<&str> = c["env"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap())
                .collect();
            for a in c["args"].as_vec().unwrap() {
                if let Some(var) = a.as_str().unwrap().strip_prefix("$(") {
                    let var = var.trim_end_matches(')');
                    assert!(env.contains(&var), "{name}: $({var}) is not set");
                }
            }
        }
    }
    for s in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Service"))
    {
        let selector = &s["spec"]["selector"];
        assert!(
            deployments
                .iter()
                .any(|d| &d["spec"]["template"]["metadata"]["labels"] == selector),
            "service {:?} selects no deployment's pods",
            s["metadata"]["name"]
        );
    }
}

#[test]
fn the_image_runs_the_binary_as_a_non_root_user() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let last_stage = text.rsplit_once("\nFROM ").unwrap().1;
    let user = last_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image names its user");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "USER {user}"
    );
    let json_list = |prefix: &str| -> Vec<String> {
        let line = last_stage
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix}is in the image"));
        serde_json::from_str(line).unwrap()
    };
    assert_eq!(json_list("ENTRYPOINT "), ["/usr/local/bin/kairos"]);
    accepted(&json_list("CMD ")).unwrap();
}
