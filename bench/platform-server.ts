/**
 * A minimal Nest app for bench/platform.ts, on the HTTP platform named by
 * PLATFORM (fastify or express): a JSON read and a validated JSON write, the
 * shapes vmplane serves, with no database.
 */
import 'reflect-metadata';
import { Body, Controller, Get, Module, Param, Post, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { IsInt, IsString, Max, Min } from 'class-validator';

class CreateThing {
  @IsString()
  name: string;

  @IsInt()
  @Min(1)
  @Max(256)
  cpu_cores: number;
}

@Controller()
class ThingsController {
  @Get('health')
  health() {
    return { status: 'ok' };
  }

  @Get('things/:id')
  get(@Param('id') id: string) {
    return { id, name: 'test-vm', cpu_cores: 2, memory: 4096, disk_size: 50, labels: ['test'], status: 'created', created_at: new Date().toISOString() };
  }

  @Post('things')
  create(@Body() body: CreateThing) {
    return { id: 'x', ...body, status: 'created' };
  }
}

@Module({ controllers: [ThingsController] })
class BenchModule {}

async function main(): Promise<void> {
  const fastify = process.env.PLATFORM !== 'express';
  const app = await NestFactory.create(BenchModule, fastify ? new FastifyAdapter() : new ExpressAdapter(), { logger: false });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  await app.listen(Number(process.env.PORT), '127.0.0.1');
}

void main();
