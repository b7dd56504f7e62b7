//! The device Durable Object: one per device, named by device id. It holds the device record
//! and its management credentials; every write of one request is a single `put_multiple`.

use crate::enrollment::{CertRef, DeviceRecord, DeviceStatus, DmCredentials};
use crate::objects::{Batch, JsonStorage};
use serde::{Deserialize, Serialize};
use worker::*;

pub const BINDING: &str = "DEVICES";

const RECORD: &str = "record";
const CREDENTIALS: &str = "credentials";

/// `PUT /enrollment`: a new enrollment (or a re-enrollment) of this device.
#[derive(Debug, Serialize, Deserialize)]
pub struct Enrollment {
    pub record: DeviceRecord,
    pub credentials: DmCredentials,
}

/// `POST /renewed`: the device got a new certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Renewed {
    pub certificate: CertRef,
    pub renewed_at: String,
}

#[durable_object]
pub struct DeviceObject {
    state: State,
}

impl DurableObject for DeviceObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = JsonStorage(self.state.storage());
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Get, "/record") => match storage.get::<DeviceRecord>(RECORD).await? {
                Some(r) => Response::from_json(&r),
                None => Response::error("no such device", 404),
            },
            (Method::Put, "/enrollment") => {
                let Ok(e) = req.json::<Enrollment>().await else {
                    return Response::error("malformed enrollment", 400);
                };
                let mut batch = Batch::default();
                batch.put(RECORD, &e.record)?;
                batch.put(CREDENTIALS, &e.credentials)?;
                storage.commit(batch).await?;
                Response::from_json(&e.record)
            }
            (Method::Post, "/renewed") => {
                let Ok(r) = req.json::<Renewed>().await else {
                    return Response::error("malformed renewal", 400);
                };
                let Some(mut record) = storage.get::<DeviceRecord>(RECORD).await? else {
                    return Response::error("no such device", 404);
                };
                if record.status != DeviceStatus::Enrolled {
                    return Response::error("device is not enrolled", 409);
                }
                record.certificate = r.certificate;
                record.renewed_at = Some(r.renewed_at);
                storage.put(RECORD, &record).await?;
                Response::from_json(&record)
            }
            _ => Response::error("no such device operation", 404),
        }
    }
}
