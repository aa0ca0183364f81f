//! OTLP over gRPC: the collector's LogsService and MetricsService.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::{MAX_REQUEST_BYTES, Shared};

struct Logs(Arc<Shared>);
struct Metrics(Arc<Shared>);

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        match self.0.ingest_logs(request.get_ref()) {
            Ok(()) => Ok(Response::new(ExportLogsServiceResponse::default())),
            // Retryable for the exporter: the disk may come back.
            Err(err) => Err(Status::unavailable(format!("{err:#}"))),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        match self.0.ingest_metrics(request.get_ref()) {
            Ok(()) => Ok(Response::new(ExportMetricsServiceResponse::default())),
            Err(err) => Err(Status::unavailable(format!("{err:#}"))),
        }
    }
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let logs = LogsServiceServer::new(Logs(Arc::clone(&shared)))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let metrics = MetricsServiceServer::new(Metrics(shared))
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    tonic::transport::Server::builder()
        .add_service(logs)
        .add_service(metrics)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop)
        .await?;
    Ok(())
}
