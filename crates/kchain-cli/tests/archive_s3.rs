//! `kchain archive` and `verify --archive` against a real S3-compatible server on loopback:
//! moto in server mode (from the interop Python, `scripts/py-env.sh`), started and stopped by
//! the test. The requests are the object_store crate's real S3 client's, signed and all.

mod support;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kchain_testkit::{python, run_python};
use support::{json, Env};

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto (scripts/py-env.sh installs it)");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Runs `code` in Python with `s3` a boto3 client of this server.
    fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n{code}",
            self.endpoint
        );
        run_python(&["-c", &script])
    }

    /// The kchain binary in `env` with this server's endpoint and credentials.
    fn kchain(&self, env: &Env, args: &[&str]) -> (i32, serde_json::Value) {
        let out = env
            .command(args)
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = out.status.code().unwrap();
        assert!(
            code == 0 || code == 3,
            "kchain {args:?}: {code} {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (code, json(&stdout))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn archive_and_verify_on_an_s3_compatible_server() {
    let moto = Moto::start();
    moto.boto("s3.create_bucket(Bucket='kchain')");
    let env = Env::new();
    env.ok(&["keygen", "--name", "acme"], "");
    env.ok(&["topic", "create", "orders"], "");
    let input: String = (0..700).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    env.ok(&["produce", "orders", "--no-checkpoints"], &input);
    env.ok(&["checkpoint", "publish", "orders"], "");
    let url = "s3://kchain/archives";
    let state = env.dir.path().join("state").display().to_string();

    let (_, v) = moto.kchain(&env, &["archive", "orders", "--to", url, "--json"]);
    assert_eq!(v["chains"][0]["size"], 700, "{v}");
    let listed = moto
        .boto("print(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='kchain')['Contents']))");
    for key in [
        "archives/orders/0/checkpoint",
        "archives/orders/0/tile/0/001",
        "archives/orders/0/tile/0/002.p/188",
        "archives/orders/0/tile/1/000.p/2",
        "archives/orders/0/tile/entries/002.p/188",
        "archives/orders/0/kchain/records/000",
    ] {
        assert!(listed.contains(&format!("'{key}'")), "{key}: {listed}");
    }
    let verify = [
        "verify",
        "orders",
        "--archive",
        url,
        "--state",
        &state,
        "--json",
    ];
    let (code, v) = moto.kchain(&env, &verify);
    assert_eq!(
        (code, v["chains"][0]["size"].clone()),
        (0, 700.into()),
        "{v}"
    );

    // Incremental: a second run with nothing new writes nothing.
    let (_, v) = moto.kchain(&env, &["archive", "orders", "--to", url, "--json"]);
    assert_eq!(v["chains"][0]["objects"], 0, "{v}");

    // A deleted tile is a finding at its first entry.
    moto.boto("s3.delete_object(Bucket='kchain', Key='archives/orders/0/tile/0/001')");
    let (code, v) = moto.kchain(&env, &verify);
    assert_eq!(code, 3, "{v}");
    let f = &v["chains"][0]["findings"][0];
    assert_eq!(
        (f["kind"].as_str(), f["entry"].as_u64()),
        (Some("archive_object_missing"), Some(256)),
        "{v}"
    );
}
