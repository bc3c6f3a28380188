//! placeholder
pub async fn login_form() {}
pub async fn login() {}
pub async fn login_verify() {}
pub async fn logout() {}
pub async fn home() {}
pub async fn certificate() {}
pub async fn act() {}
pub async fn create_user() {}
pub async fn rotate_keys() {}
