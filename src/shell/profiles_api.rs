//! The admin API of configuration profiles and groups (`/api/v1/profiles…`, `/api/v1/groups…`,
//! `/api/v1/devices/{id}/profiles`, and the groups on a device's record): decode, validate in
//! the core ([`ProfileRequest`]), call the catalogue or the device object, encode. Bad input is
//! refused before anything is stored.

use super::admin_api::read_body;
use super::platform::now_ms;
use super::ports::EdgePorts;
use super::respond::{catalog_error, device_error, json, json_error, no_content, server_error};
use crate::device::calls::{DeviceCall, DeviceError, DeviceReply};
use crate::device::valid_device_id;
use crate::enroll::flow::Devices;
use crate::http::{RequestUrl, MAX_JSON_BYTES};
use crate::object_call::StoreError;
use crate::profiles::catalog::{Catalog, CatalogCall, CatalogError, CatalogReply};
use crate::profiles::request::{ProfileRequest, MAX_PROFILE_JSON_BYTES};
use crate::profiles::{valid_group_name, valid_profile_id, Targets};
use crate::time::format_timestamp;
use worker::*;

/// Default page size of `GET /api/v1/profiles/{id}/devices`.
const DEFAULT_PAGE: usize = 100;

/// Routes under `/api/v1/` that belong here; `None` when the path is not one of them.
pub async fn handle(
    req: &Request,
    url: &RequestUrl,
    ports: &EdgePorts<'_>,
    segments: &[&str],
) -> Option<Result<Response>> {
    let answer = match (req.method(), segments) {
        (Method::Post, ["profiles"]) => save(req, ports, None).await,
        (Method::Get, ["profiles"]) => catalog(ports, CatalogCall::ListProfiles, 200).await,
        (_, ["profiles", id, ..]) if !valid_profile_id(id) => json_error(404, "no such profile"),
        (Method::Get, ["profiles", id]) => {
            catalog(ports, CatalogCall::GetProfile { id: id.to_string() }, 200).await
        }
        (Method::Put, ["profiles", id]) => save(req, ports, Some(id)).await,
        (Method::Delete, ["profiles", id]) => {
            catalog(ports, CatalogCall::DeleteProfile { id: id.to_string() }, 204).await
        }
        (Method::Get, ["profiles", id, "devices"]) => {
            let mut cursor = None;
            let mut limit = DEFAULT_PAGE;
            for (k, v) in url.query_pairs() {
                match k.as_str() {
                    "cursor" if valid_device_id(&v) => cursor = Some(v),
                    "limit" => match v.parse::<usize>() {
                        Ok(n) if (1..=1000).contains(&n) => limit = n,
                        _ => return Some(json_error(400, "limit must be 1 to 1000")),
                    },
                    "cursor" => return Some(json_error(400, "malformed cursor")),
                    _ => {}
                }
            }
            let call = CatalogCall::ProfileDevices { id: id.to_string(), cursor, limit };
            catalog(ports, call, 200).await
        }
        (Method::Post, ["groups"]) => create_group(req, ports).await,
        (Method::Get, ["groups"]) => catalog(ports, CatalogCall::ListGroups, 200).await,
        (_, ["groups", name, ..]) if !valid_group_name(name) => json_error(404, "no such group"),
        (Method::Delete, ["groups", name]) => {
            group(ports, CatalogCall::DeleteGroup { name: name.to_string() }).await
        }
        (Method::Put | Method::Delete, ["groups", _, "devices", id]) if !valid_device_id(id) => {
            json_error(404, "no such device")
        }
        (Method::Put, ["groups", name, "devices", id]) => {
            match device_exists(ports, id).await {
                Ok(true) => {}
                Ok(false) => return Some(json_error(404, "no such device")),
                Err(e) => return Some(server_error(&e)),
            }
            let call = CatalogCall::AddMember { group: name.to_string(), device_id: id.to_string() };
            group(ports, call).await
        }
        (Method::Delete, ["groups", name, "devices", id]) => {
            let call = CatalogCall::RemoveMember { group: name.to_string(), device_id: id.to_string() };
            group(ports, call).await
        }
        (Method::Get, ["devices", id, "profiles"]) if valid_device_id(id) => {
            match ports.device(id, DeviceCall::Profiles).await {
                Ok(Ok(DeviceReply::Profiles(p))) => json(200, &serde_json::json!({ "profiles": p })),
                Ok(Ok(other)) => server_error(&StoreError(format!("device object answered {other:?}"))),
                Ok(Err(e)) => device_error(&e),
                Err(e) => server_error(&e),
            }
        }
        _ => return None,
    };
    Some(answer)
}

/// `GET /api/v1/devices/{id}`: the device object's view and the groups the catalogue has it in.
pub async fn device_record(ports: &EdgePorts<'_>, id: &str) -> Result<Response> {
    let view = match ports.device(id, DeviceCall::Record).await {
        Ok(Ok(DeviceReply::View(v))) => v,
        Ok(Ok(other)) => return server_error(&StoreError(format!("device object answered {other:?}"))),
        Ok(Err(e)) => return device_error(&e),
        Err(e) => return server_error(&e),
    };
    let groups = match ports.catalog(CatalogCall::GroupsOf { device_id: id.to_string() }).await {
        Ok(Ok(CatalogReply::GroupNames(g))) => g,
        other => return server_error(&StoreError(format!("catalogue answered {other:?}"))),
    };
    let mut body = serde_json::to_value(&view)?;
    body["groups"] = serde_json::json!(groups);
    json(200, &body)
}

async fn device_exists(ports: &EdgePorts<'_>, id: &str) -> std::result::Result<bool, StoreError> {
    match ports.device(id, DeviceCall::Record).await? {
        Ok(_) => Ok(true),
        Err(DeviceError::NoSuchDevice) => Ok(false),
        Err(e) => Err(StoreError(format!("device object answered {e:?}"))),
    }
}

/// `POST /api/v1/profiles` (`id` None) and `PUT /api/v1/profiles/{id}`.
async fn save(req: &Request, ports: &EdgePorts<'_>, id: Option<&str>) -> Result<Response> {
    let bytes = match read_body(req, MAX_PROFILE_JSON_BYTES).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let request = match ProfileRequest::from_json(&bytes) {
        Ok(r) => r,
        Err(message) => return json_error(400, &message),
    };
    if let Targets::Devices(ids) = &request.targets {
        for d in ids {
            match device_exists(ports, d).await {
                Ok(true) => {}
                Ok(false) => return json_error(404, &format!("no such device: {d}")),
                Err(e) => return server_error(&e),
            }
        }
    }
    let now = format_timestamp(now_ms());
    match id {
        None => catalog(ports, CatalogCall::CreateProfile { request, now }, 201).await,
        Some(id) => {
            catalog(ports, CatalogCall::UpdateProfile { id: id.to_string(), request, now }, 200).await
        }
    }
}

async fn create_group(req: &Request, ports: &EdgePorts<'_>) -> Result<Response> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewGroup {
        name: String,
    }
    let bytes = match read_body(req, MAX_JSON_BYTES).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let new: NewGroup = match crate::codec::from_json(&bytes) {
        Ok(g) => g,
        Err(e) => return json_error(400, &format!("invalid JSON: {e}")),
    };
    if !valid_group_name(&new.name) {
        return json_error(400, "a group name is 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let now = format_timestamp(now_ms());
    catalog(ports, CatalogCall::CreateGroup { name: new.name, now }, 201).await
}

/// A group route: an unknown group is 404 here (a profile naming one is a 400).
async fn group(ports: &EdgePorts<'_>, call: CatalogCall) -> Result<Response> {
    let status = if matches!(call, CatalogCall::DeleteGroup { .. } | CatalogCall::RemoveMember { .. }) {
        204
    } else {
        200
    };
    match ports.catalog(call).await {
        Ok(Err(CatalogError::NoSuchGroup(g))) => json_error(404, &format!("no such group: {g}")),
        answer => encode(answer, status),
    }
}

async fn catalog(ports: &EdgePorts<'_>, call: CatalogCall, status: u16) -> Result<Response> {
    encode(ports.catalog(call).await, status)
}

/// The catalogue's answer as the API shows it.
fn encode(
    answer: std::result::Result<std::result::Result<CatalogReply, CatalogError>, StoreError>,
    status: u16,
) -> Result<Response> {
    match answer {
        Ok(Ok(_)) if status == 204 => no_content(),
        Ok(Ok(CatalogReply::Profile(v))) => json(status, &v),
        Ok(Ok(CatalogReply::Profiles(v))) => json(status, &serde_json::json!({ "profiles": v })),
        Ok(Ok(CatalogReply::Devices { devices, next_cursor })) => {
            json(status, &serde_json::json!({ "devices": devices, "next_cursor": next_cursor }))
        }
        Ok(Ok(CatalogReply::Group(g))) => json(status, &g),
        Ok(Ok(CatalogReply::Groups(g))) => json(status, &serde_json::json!({ "groups": g })),
        Ok(Ok(other)) => server_error(&StoreError(format!("catalogue answered {other:?}"))),
        Ok(Err(e)) => catalog_error(&e),
        Err(e) => server_error(&e),
    }
}
