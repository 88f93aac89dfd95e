use super::*;

#[test]
fn the_secret_policy_accepts_only_the_stored_secret() {
    let stored = SecretHashPolicy.store("c", b"s3cret");
    assert!(SecretHashPolicy.check("c", b"s3cret", &stored).is_ok());
    assert!(SecretHashPolicy.check("c", b"s3cret!", &stored).is_err());
}

// The row read on the calling thread is the row sea-orm reads, column for column
// (timestamps, booleans, NULLs), and a missing client is missing on both paths.
#[tokio::test]
async fn the_synchronous_read_and_sea_orm_give_the_same_client_row() {
    let (dir, db, readers) = crate::db::temporary_sqlite().await;
    for (id, confidential, trusted, name) in [
        ("web", false, true, Some("The Web App".to_owned())),
        ("svc", true, false, None),
    ] {
        register(
            &db,
            NewClient {
                client_id: id.into(),
                confidential,
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                scopes: "openid posts:read".into(),
                redirect_uris: vec![
                    "https://app.example/cb".into(),
                    "http://127.0.0.1/cb".into(),
                ],
                post_logout_redirect_uris: vec!["https://app.example/bye".into()],
                trusted,
                name,
            },
        )
        .await
        .unwrap();
    }
    // posts-web is the migration's built-in client, its created_at written by SQLite's
    // CURRENT_TIMESTAMP, not by sqlx.
    for id in ["web", "svc", "posts-web", "nobody"] {
        let orm = clients::Entity::find_by_id(id.to_owned())
            .one(&db)
            .await
            .unwrap();
        let fast = readers.read(|c| read_row(c, id));
        assert_eq!(fast, Some(orm.clone()), "{id}");
        assert_eq!(read(&db, Some(&readers), id).await.unwrap(), orm, "{id}");
    }
    assert!(
        readers
            .read(|c| read_row(c, "svc"))
            .unwrap()
            .unwrap()
            .secret_hash
            .is_some()
    );
    // A reader that cannot open its file leaves the lookup to sea-orm.
    let absent = dir.path().join("absent.db");
    let broken = Readers::for_url(&format!("sqlite://{}", absent.display())).unwrap();
    let web = read(&db, Some(&broken), "web").await.unwrap().unwrap();
    assert_eq!(web.name.as_deref(), Some("The Web App"));
}

fn service(client_id: &str) -> NewClient {
    NewClient {
        client_id: client_id.into(),
        confidential: true,
        grant_types: vec!["client_credentials".into()],
        scopes: "posts:read".into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        trusted: false,
        name: None,
    }
}

// Every change of `clients`, by any connection, moves the version (the migration's
// triggers), read the same on both paths.
#[tokio::test]
async fn every_change_of_the_clients_moves_their_version() {
    let (dir, db, readers) = crate::db::temporary_sqlite().await;
    let absent = dir.path().join("absent.db");
    let broken = Readers::for_url(&format!("sqlite://{}", absent.display())).unwrap();
    let version = || async {
        let fast = read_version(&db, Some(&readers)).await.unwrap();
        assert_eq!(read_version(&db, Some(&broken)).await.unwrap(), fast);
        fast
    };
    let mut seen = vec![version().await];
    register(&db, service("svc")).await.unwrap();
    seen.push(version().await);
    db.execute_unprepared("UPDATE clients SET scopes = 'openid' WHERE client_id = 'svc'")
        .await
        .unwrap();
    seen.push(version().await);
    assert!(delete(&db, "svc").await.unwrap());
    seen.push(version().await);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

// A cached client outlives its deletion by at most the bound.
#[tokio::test]
async fn a_deleted_client_is_gone_from_the_cache_within_the_bound() {
    let (_dir, db, readers) = crate::db::temporary_sqlite().await;
    let cache = ClientCache::default();
    register(&db, service("svc")).await.unwrap();
    assert!(
        row(&db, Some(&readers), &cache, "svc")
            .await
            .unwrap()
            .is_some()
    );
    // A new client is found at once: absences are not cached.
    register(&db, service("new")).await.unwrap();
    assert!(
        row(&db, Some(&readers), &cache, "new")
            .await
            .unwrap()
            .is_some()
    );
    let deleted_at = Instant::now();
    assert!(delete(&db, "svc").await.unwrap());
    let asked_at = Instant::now();
    let still = row(&db, Some(&readers), &cache, "svc").await.unwrap();
    assert!(
        still.is_none() || asked_at.duration_since(deleted_at) < CACHE_BOUND,
        "served from the cache past the bound"
    );
    tokio::time::sleep(CACHE_BOUND).await;
    assert_eq!(row(&db, Some(&readers), &cache, "svc").await.unwrap(), None);
    assert!(
        row(&db, Some(&readers), &cache, "new")
            .await
            .unwrap()
            .is_some()
    );
}
