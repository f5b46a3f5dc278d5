// AWS credentials as the AWS CLI and SDKs find them: the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else the shared
// credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), section
// AWS_PROFILE or "default".
#pragma once

#include <string>

#include "edgeferry/status.h"

namespace edgeferry::drivers::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
};

// `file` and `profile` override the environment's choice when not empty.
// Errors: NotFound when no credentials are configured anywhere (the message names the
// environment variables and the file it looked at); InvalidArgument when
// the file exists but the profile lacks a key.
Result<Credentials> LoadCredentials(const std::string& file = "", const std::string& profile = "");

}  // namespace edgeferry::drivers::aws
